"""The bot policy: answers each inbound message of a conversation the company's bot owns,
through a `Responder`, or hands the customer to a person.

It decides on the conversation as it was just after the message (so a replay decides the
same), and each answer is keyed by the message it answers, so a replay or a rebuild of this
policy never answers a message twice."""

from uuid import UUID

from ledger.application import Ledger
from ledger.bot import OfflineResponder, Responder
from ledger.channels._payloads import html_to_text
from ledger.messaging import Conversation
from ledger.tenancy import Company
from projections import Projection
from projections.runner import Projector
from workers.policies.assignment import choose_agent, is_fresh


def build(ledger: Ledger, projector: Projector, responder: Responder | None = None) -> Projection:
    policy = Projection("bot", ddl=[], tables=[], starts_at_head=True)
    responder = responder or OfflineResponder()

    @policy.on(Conversation.InboundMessageReceived)
    def answer(cursor, event: Conversation.InboundMessageReceived, position: int) -> None:
        if not is_fresh(event):
            return
        conversation_id = UUID(str(event.originator_id))
        conversation = ledger.conversation_at(conversation_id, event.originator_version)
        company = ledger.get_owned(Company, UUID(event.company_id), event.company_id)
        if conversation.owner_id != company.bot_user_id or conversation.status != "open":
            return
        text = html_to_text(event.body) if event.message_type == "email" else event.body
        decision = responder.respond(
            text, event.seq == 1, conversation.bot_fallbacks, ledger.bot_config(event.company_id)
        )
        if decision.action == "reply":
            ledger.bot_answer(conversation_id, event.message_id, decision.body, decision.intent)
            return
        agent_id = choose_agent(ledger, projector, event.company_id)
        ledger.bot_answer(conversation_id, event.message_id, decision.body, decision.intent, True, agent_id)

    return policy
