"""Conversation timelines: every message of a conversation, ordered by seq."""

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.contacts import ERASED, Contact
from ledger.conversation_state import IMPORTED_STATUS, new_message
from ledger.delivery import folded
from ledger.messaging import Conversation
from projections import Projection

# Each attachment of a list replaced by "[erased]" (the placeholder is the query's parameter).
ERASED_ATTACHMENTS = """(select coalesce(jsonb_agg(to_jsonb(%s::text)), '[]'::jsonb)
                         from jsonb_array_elements(attachments))"""

PROJECTION = Projection(
    "timeline",
    ddl=[
        """create table if not exists timeline_messages (
            conversation_id uuid not null,
            seq integer not null,
            id uuid not null unique,
            company_id uuid not null,
            direction text not null,
            author_id uuid,
            contact_id uuid,
            body text not null,
            attachments jsonb not null,
            message_type text not null,
            sent_at timestamptz,
            recorded_at timestamptz not null,
            status text not null,
            provider_message_id text,
            position bigint not null,
            primary key (conversation_id, seq)
        )""",
        "alter table timeline_messages add column if not exists status_history jsonb not null default '[]'",
        "alter table timeline_messages add column if not exists attempts jsonb not null default '[]'",
        "alter table timeline_messages add column if not exists failure_reason text",
    ],
    tables=["timeline_messages"],
)


@PROJECTION.on(Conversation.InboundMessageReceived)
@PROJECTION.on(Conversation.OutboundMessageQueued)
@PROJECTION.on(Conversation.OutboundMessageImported)
def message_added(cursor, event, position: int) -> None:
    """The message as the conversation's state fold makes it (GET .../state replays the same rules)."""
    message = new_message(event)
    history = [] if message["direction"] == "inbound" else [first_status(event)]
    cursor.execute(
        """insert into timeline_messages (conversation_id, seq, id, company_id, direction, author_id, contact_id,
               body, attachments, message_type, sent_at, recorded_at, status, provider_message_id, position,
               status_history)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        [
            event.originator_id,
            message["seq"],
            message["id"],
            event.company_id,
            message["direction"],
            message["author_id"],
            message["contact_id"],
            message["body"],
            Jsonb(message["attachments"]),
            message["type"],
            message["sent_at"],
            message["recorded_at"],
            message["status"],
            message["provider_message_id"],
            position,
            Jsonb(history),
        ],
    )


@PROJECTION.on(Contact.PersonalDataErased)
def personal_data_erased(cursor, event: Contact.PersonalDataErased, position: int) -> None:
    """What the erased events read back as: each body and attachment of the contact's messages is "[erased]"."""
    cursor.execute(
        f"""update timeline_messages set body = %s, attachments = {ERASED_ATTACHMENTS}
            where company_id = %s and contact_id = %s""",
        [ERASED, ERASED, event.company_id, event.originator_id],
    )


def first_status(event: Conversation.OutboundMessageQueued | Conversation.OutboundMessageImported) -> dict:
    """Queued by the ledger, or sent by the provider that delivered an imported message."""
    if isinstance(event, Conversation.OutboundMessageImported):
        return {"status": IMPORTED_STATUS, "at": (event.sent_at or event.recorded_at.isoformat()), "source": "provider"}
    return {"status": "queued", "at": event.recorded_at.isoformat(), "source": "ledger"}


@PROJECTION.on(Conversation.OutboundAttemptStarted)
def attempt_started(cursor, event: Conversation.OutboundAttemptStarted, position: int) -> None:
    def change(message: dict) -> None:
        message["attempts"].append(
            {
                "n": event.attempt,
                "started_at": event.recorded_at.isoformat(),
                "outcome": None,
                "http_status": None,
                "reason": None,
                "next_attempt_at": None,
            }
        )
        message["status"] = folded(message["status"], "sending")

    update_message(cursor, event.message_id, change)


@PROJECTION.on(Conversation.OutboundAttemptFailed)
def attempt_failed(cursor, event: Conversation.OutboundAttemptFailed, position: int) -> None:
    def change(message: dict) -> None:
        settle_attempt(message, event.attempt, "retry", event.http_status, event.reason, event.next_attempt_at)

    update_message(cursor, event.message_id, change)


@PROJECTION.on(Conversation.OutboundMessageSent)
def message_sent(cursor, event: Conversation.OutboundMessageSent, position: int) -> None:
    def change(message: dict) -> None:
        settle_attempt(message, event.attempt, "sent", event.http_status, None, None)
        message["provider_message_id"] = event.provider_message_id
        message["sent_at"] = event.recorded_at
        add_status(message, "sent", event.recorded_at, "ledger")

    update_message(cursor, event.message_id, change)


@PROJECTION.on(Conversation.OutboundMessageFailed)
def message_failed(cursor, event: Conversation.OutboundMessageFailed, position: int) -> None:
    def change(message: dict) -> None:
        settle_attempt(message, event.attempt, "failed", event.http_status, event.reason, None)
        message["failure_reason"] = event.reason
        add_status(message, "failed", event.recorded_at, "ledger", reason=event.reason)

    update_message(cursor, event.message_id, change)


@PROJECTION.on(Conversation.DeliveryStatusReported)
def status_reported(cursor, event: Conversation.DeliveryStatusReported, position: int) -> None:
    def change(message: dict) -> None:
        add_status(
            message,
            event.status,
            event.recorded_at,
            "provider",
            provider_status=event.provider_status,
            error_code=event.error_code,
        )

    update_message(cursor, event.message_id, change)


def settle_attempt(message: dict, n: int, outcome: str, http_status, reason, next_attempt_at) -> None:
    for attempt in message["attempts"]:
        if attempt["n"] == n:
            attempt.update(outcome=outcome, http_status=http_status, reason=reason, next_attempt_at=next_attempt_at)


def add_status(message: dict, status: str, at, source: str, **extra) -> None:
    """Every status report is listed; the message's status folds by rank and never regresses."""
    message["status_history"].append({"status": status, "at": at.isoformat(), "source": source, **extra})
    message["status"] = folded(message["status"], status)


MUTABLE = ("status", "status_history", "attempts", "provider_message_id", "sent_at", "failure_reason")


def update_message(cursor, message_id: str, change) -> None:
    row = cursor.execute(
        f"select {', '.join(MUTABLE)} from timeline_messages where id = %s for update", [message_id]
    ).fetchone()
    message = dict(zip(MUTABLE, row, strict=True))
    change(message)
    cursor.execute(
        f"update timeline_messages set {', '.join(f'{name} = %s' for name in MUTABLE)} where id = %s",
        [
            message["status"],
            Jsonb(message["status_history"]),
            Jsonb(message["attempts"]),
            message["provider_message_id"],
            message["sent_at"],
            message["failure_reason"],
            message_id,
        ],
    )


MESSAGE_COLUMNS = """id, seq, direction, author_id, contact_id, body, attachments, message_type as type, sent_at,
                     recorded_at, status, provider_message_id"""


def messages_of(conn: Connection, conversation_id: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"select {MESSAGE_COLUMNS} from timeline_messages where conversation_id = %s order by seq",
            [conversation_id],
        ).fetchall()


def get_message(conn: Connection, company_id: str, message_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"""select {MESSAGE_COLUMNS}, conversation_id, status_history, attempts, failure_reason
                from timeline_messages where company_id = %s and id = %s""",
            [company_id, message_id],
        ).fetchone()
