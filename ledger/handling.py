"""Handling conversations: owners and transfers, close, reopen, read markers, agents'
availability, and the commands the bot and assignment policies act through."""

from dataclasses import dataclass
from uuid import UUID

from ledger.errors import ValidationFailed
from ledger.messaging import Conversation
from ledger.receipts import SendReceipt
from ledger.sending import default_type
from ledger.tenancy import Channel, Company, User

HANDLERS = ("admin", "agent")  # who works conversations
OWNERS = ("admin", "agent", "bot")  # who may own one


@dataclass(frozen=True)
class Handled:
    conversation_id: str
    owner_id: str | None
    status: str
    position: int


class Handling:
    """The Ledger's conversation-handling commands (self is the Ledger)."""

    def transfer(self, principal, conversation_id: UUID, to_user_id: UUID | None, reason: str | None) -> Handled:
        principal.require(*HANDLERS)
        if to_user_id is not None:
            target = self.get_owned(User, to_user_id, principal.company_id)
            if target.role not in OWNERS:
                raise ValidationFailed.single(
                    "to_user_id", "cannot_own", f"a user with role {target.role} owns nothing"
                )
        to_owner = str(to_user_id) if to_user_id is not None else None
        return self._change(principal, conversation_id, lambda c: c.transfer(to_owner, reason, principal.actor))

    def close_conversation(self, principal, conversation_id: UUID) -> Handled:
        principal.require(*HANDLERS)
        return self._change(principal, conversation_id, lambda c: c.close(principal.actor))

    def reopen_conversation(self, principal, conversation_id: UUID) -> Handled:
        principal.require(*HANDLERS)
        return self._change(principal, conversation_id, lambda c: c.reopen(principal.actor))

    def mark_read(self, principal, conversation_id: UUID) -> Handled:
        principal.require(*HANDLERS)
        return self._change(principal, conversation_id, lambda c: c.mark_read(principal.user_id, principal.actor))

    def _change(self, principal, conversation_id: UUID, change) -> Handled:
        """A change of one conversation; one that changes nothing appends nothing."""

        def run() -> Handled:
            conversation = self.get_owned(Conversation, conversation_id, principal.company_id)
            position = self.commit(conversation) if change(conversation) else self.head_position()
            return Handled(str(conversation.id), conversation.owner_id, conversation.status, position)

        return self.retry_on_conflict(run)

    def set_availability(self, principal, user_id: UUID, available: bool) -> tuple[User, int]:
        if principal.role != "admin" and str(user_id) != principal.user_id:
            principal.require("admin")
        user = self.get_owned(User, user_id, principal.company_id)
        if user.role not in HANDLERS:
            raise ValidationFailed.single("available", "cannot_own", f"a user with role {user.role} takes no handoffs")

        def run() -> tuple[User, int]:
            user = self.get_owned(User, user_id, principal.company_id)
            position = self.commit(user) if user.set_availability(available, principal.actor) else self.head_position()
            return user, position

        return self.retry_on_conflict(run)

    # -- what the policies act through ------------------------------------------------------

    def available_agents(self, company_id: str) -> list[User]:
        company = self.get_owned(Company, UUID(company_id), company_id)
        users = [self.get_owned(User, UUID(user_id), company_id) for user_id in company.user_ids]
        return [user for user in users if user.role in HANDLERS and user.available]

    def conversation_at(self, conversation_id: UUID, version: int) -> Conversation:
        """The conversation as it was just after the given version: what a policy decides on, so
        that replaying the log decides the same."""
        return self.repository.get(conversation_id, version=version)

    def bot_answer(
        self,
        conversation_id: UUID,
        answered_message_id: str,
        body: str,
        intent: str,
        hand_off: bool = False,
        to_owner_id: str | None = None,
    ) -> int | None:
        """The bot's reply to one inbound message (an outbound send like any other) and, on a
        handoff, the transfer, in one transaction. Keyed by the message it answers: a replay
        finds its receipt and does nothing. None when nothing was done (answered already, or
        the conversation is no longer the bot's)."""
        key = f"bot:{answered_message_id}"

        def run() -> int | None:
            conversation = self.find(Conversation, conversation_id)
            company = self.get_owned(Company, UUID(conversation.company_id), conversation.company_id)
            receipt_id = SendReceipt.id_for(company.company_id, key)
            if self.find(SendReceipt, receipt_id) is not None or conversation.owner_id != company.bot_user_id:
                return None
            channel = self.get_channel(UUID(conversation.channel_id))
            actor = f"bot:{company.bot_user_id}"
            _, receipt = self._add_outbound(
                conversation, company.bot_user_id, actor, body, [], default_type(channel.kind, []), key, intent
            )
            if hand_off:
                conversation.transfer(to_owner_id, "handoff", "policy:bot")
            return self.commit(conversation, receipt)

        return self.retry_on_conflict(run)

    def assign(self, conversation_id: UUID, expected_owner_id: str | None, to_owner_id: str, actor: str) -> int | None:
        """Gives the conversation to an agent if it still has the owner the policy saw (None:
        the unassigned queue); None when it has changed meanwhile, and nothing is done."""

        def run() -> int | None:
            conversation = self.find(Conversation, conversation_id)
            if conversation is None or conversation.owner_id != expected_owner_id or conversation.status != "open":
                return None
            conversation.transfer(to_owner_id, "assignment", actor)
            return self.commit(conversation)

        return self.retry_on_conflict(run)

    def channel_of(self, conversation: Conversation) -> Channel:
        return self.get_channel(UUID(conversation.channel_id))
