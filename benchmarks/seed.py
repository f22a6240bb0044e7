"""A log with history, fast: the aggregates and events webhooks would have appended, built with the
domain's own methods and committed through `Ledger.commit()` (the one write path, hash chains and all)
in batches of thousands of events instead of one transaction a webhook."""

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.client import CHANNEL_ADDRESS, TIMESTAMP
from ledger.application import Ledger
from ledger.contacts import Contact
from ledger.ids import natural_id
from ledger.messaging import Conversation
from ledger.receipts import Receipt
from ledger.tenancy import Channel, Company
from ledger.tenants import Principal

BATCH_EVENTS = 2000  # events appended per commit
CONVERSATION_BATCH = 500  # events appended per commit to one conversation


@dataclass
class Seeded:
    company: Company
    admin: Principal
    admin_key: str
    channel: Channel
    agents: list[tuple[str, str]]  # (user id, api key)
    events: int = 0
    seconds: float = 0.0


def company_with_channel(ledger: Ledger, agents: int = 0) -> Seeded:
    """A company, its sms channel and `agents` agents (with their keys), through the ledger's commands."""
    created = ledger.create_company("Bench")
    company = created.company
    admin = Principal(company.company_id, company.admin_user_id, "admin")
    channel, _, _ = ledger.create_channel(admin, "sms", CHANNEL_ADDRESS, None, None)
    users = []
    for n in range(agents):
        user, key, _ = ledger.create_user(admin, f"Agent {n}", "agent")
        users.append((str(user.id), key))
    return Seeded(company, admin, created.admin_key, channel, users)


def contact_address(n: int) -> str:
    return f"+1804{5_560_000 + n:07d}"


def webhooks_of_one_conversation(ledger: Ledger, seeded: Seeded, n: int, messages: int, owner_id: str | None) -> list:
    """The aggregates `messages` webhooks from a new sender would have saved (a contact, a conversation
    and a receipt per message, as Ledger.ingest does), handed to `owner_id` if given."""
    company_id, channel_id, actor = seeded.company.company_id, str(seeded.channel.id), f"provider:{seeded.channel.id}"
    address = contact_address(n)
    address_key = ledger.address_key(address)
    contact = Contact.create(company_id, address, address_key, "phone", actor)
    conversation = Conversation.start(
        company_id,
        channel_id,
        str(contact.id),
        address,
        address_key,
        seeded.channel.address,
        seeded.company.bot_user_id,
        actor,
    )
    receipts = []
    for m in range(messages):
        provider_id = f"seed-{n}-{m}"
        message_id = natural_id("message", Receipt.id_for(company_id, channel_id, provider_id))
        body = f"message {m} of conversation {n}"
        conversation.receive_inbound(message_id, provider_id, "sms", body, body, [], TIMESTAMP, actor)
        receipts.append(
            Receipt.claim(company_id, channel_id, provider_id, message_id, conversation.id, contact.id, actor)
        )
    if owner_id is not None:
        conversation.transfer(owner_id, "assignment", "policy:assignment")
    return [contact, conversation, *receipts]


def events_per_conversation(messages: int, owned: bool) -> int:
    return 2 + 2 * messages + (1 if owned else 0)


def seed_conversations(
    ledger: Ledger, seeded: Seeded, conversations: int, messages: int, owners: Sequence[str] = ()
) -> Seeded:
    """Appends `conversations` conversations of `messages` inbound messages each, spread round-robin over
    `owners` (else left to the bot); counts the events and the seconds it took in `seeded`."""
    started = time.perf_counter()
    pending, pending_events = [], 0
    for n in range(conversations):
        owner = owners[n % len(owners)] if owners else None
        pending += webhooks_of_one_conversation(ledger, seeded, n, messages, owner)
        pending_events += events_per_conversation(messages, owner is not None)
        if pending_events >= BATCH_EVENTS or n == conversations - 1:
            ledger.commit(*pending)
            seeded.events += pending_events
            pending, pending_events = [], 0
    seeded.seconds += time.perf_counter() - started
    return seeded


def build_conversation(ledger: Ledger, company: Company, events: int) -> uuid.UUID:
    """One conversation of `events` events (a start and inbound messages), CONVERSATION_BATCH a commit."""
    address_key = ledger.address_key("+18045551234")
    contact = Contact.create(company.company_id, "+18045551234", address_key, "phone", "system")
    conversation = Conversation.start(
        company.company_id,
        str(uuid.uuid4()),
        str(contact.id),
        "+18045551234",
        address_key,
        CHANNEL_ADDRESS,
        company.bot_user_id,
        "system",
    )
    ledger.commit(contact, conversation)
    for start in range(1, events, CONVERSATION_BATCH):
        conversation = ledger.repository.get(conversation.id)
        for n in range(start, min(start + CONVERSATION_BATCH, events)):
            conversation.receive_inbound(
                uuid.uuid4(), f"p-{n}", "sms", f"message {n}", f"message {n}", [], None, "system"
            )
        ledger.commit(conversation)
    return conversation.id
