"""The outbox: one row per outbound message the dispatcher has still to settle, with the
time it is due. The dispatcher claims due rows with FOR UPDATE SKIP LOCKED and a lease, so
a waiting retry holds no worker. The rows are an index; the stream that records the send decides:
a conversation (`source` conversation; conversation_id is its id) or an assistance request (`source`
assistance; conversation_id and message_id are both the request's id)."""

from datetime import datetime

from psycopg import Connection
from psycopg.types.json import Jsonb

from ledger.assistance import AssistanceRequest
from ledger.contacts import ERASED, Contact
from ledger.messaging import Conversation
from projections import Projection
from projections.timeline import ERASED_ATTACHMENTS

PROJECTION = Projection(
    "outbox",
    ddl=[
        """create table if not exists outbox (
            message_id uuid primary key,
            conversation_id uuid not null,
            company_id uuid not null,
            channel_id uuid not null,
            recipient text not null,
            message_type text not null,
            body text not null,
            attachments jsonb not null,
            queued_at timestamptz not null,
            due_at timestamptz not null,
            lease_until timestamptz
        )""",
        "create index if not exists outbox_due on outbox (due_at)",
        "alter table outbox add column if not exists contact_id uuid",
        "alter table outbox add column if not exists source text not null default 'conversation'",
    ],
    tables=["outbox"],
)


@PROJECTION.on(Conversation.OutboundMessageQueued)
def queued(cursor, event: Conversation.OutboundMessageQueued, position: int) -> None:
    cursor.execute(
        """insert into outbox (message_id, conversation_id, company_id, contact_id, channel_id, recipient,
               message_type, body, attachments, queued_at, due_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (message_id) do nothing""",
        [
            event.message_id,
            event.originator_id,
            event.company_id,
            event.contact_id,
            event.channel_id,
            event.to,
            event.message_type,
            event.body,
            Jsonb(event.attachments),
            event.recorded_at,
            event.recorded_at,
        ],
    )


@PROJECTION.on(AssistanceRequest.Requested)
def assistance_requested(cursor, event: AssistanceRequest.Requested, position: int) -> None:
    cursor.execute(
        """insert into outbox (message_id, conversation_id, company_id, channel_id, recipient, message_type, body,
               attachments, queued_at, due_at, source)
           values (%s, %s, %s, %s, %s, 'text', %s, '[]', %s, %s, 'assistance')
           on conflict (message_id) do nothing""",
        [
            event.originator_id,
            event.originator_id,
            event.company_id,
            event.channel_id,
            event.to,
            event.body,
            event.recorded_at,
            event.recorded_at,
        ],
    )


@PROJECTION.on(AssistanceRequest.AttemptFailed)
def assistance_attempt_failed(cursor, event: AssistanceRequest.AttemptFailed, position: int) -> None:
    cursor.execute(
        "update outbox set due_at = %s, lease_until = null where message_id = %s",
        [event.next_attempt_at, event.originator_id],
    )


@PROJECTION.on(AssistanceRequest.Sent)
@PROJECTION.on(AssistanceRequest.Failed)
def assistance_settled(cursor, event, position: int) -> None:
    cursor.execute("delete from outbox where message_id = %s", [event.originator_id])


@PROJECTION.on(Contact.PersonalDataErased)
def personal_data_erased(cursor, event: Contact.PersonalDataErased, position: int) -> None:
    """What the erased events read back as. The dispatcher fails such a message instead of sending it."""
    cursor.execute(
        f"""update outbox set recipient = %s, body = %s, attachments = {ERASED_ATTACHMENTS}
            where company_id = %s and contact_id = %s""",
        [ERASED, ERASED, ERASED, event.company_id, event.originator_id],
    )


@PROJECTION.on(Conversation.OutboundAttemptFailed)
def attempt_failed(cursor, event: Conversation.OutboundAttemptFailed, position: int) -> None:
    cursor.execute(
        "update outbox set due_at = %s, lease_until = null where message_id = %s",
        [event.next_attempt_at, event.message_id],
    )


@PROJECTION.on(Conversation.OutboundMessageSent)
@PROJECTION.on(Conversation.OutboundMessageFailed)
def settled(cursor, event, position: int) -> None:
    cursor.execute("delete from outbox where message_id = %s", [event.message_id])


def claim_due(conn: Connection, limit: int, lease_seconds: float) -> list[dict]:
    """Leases up to `limit` due rows to the caller; a row leased by a live dispatcher is
    skipped, one whose lease ran out (its dispatcher died) is due again."""
    with conn.transaction():
        rows = conn.execute(
            """update outbox set lease_until = now() + make_interval(secs => %s)
               where message_id in (
                   select message_id from outbox
                   where due_at <= now() and (lease_until is null or lease_until < now())
                   order by due_at limit %s for update skip locked)
               returning message_id, conversation_id, channel_id, recipient, message_type, body, attachments,
                         queued_at, source""",
            [lease_seconds, limit],
        ).fetchall()
    columns = ("message_id", "conversation_id", "channel_id", "to", "message_type", "body", "attachments", "queued_at")
    columns += ("source",)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def reschedule(conn: Connection, message_id: str, due_at: datetime, min_delay_seconds: float) -> None:
    """Due again at due_at by the dispatcher's clock, and not sooner than min_delay_seconds by the
    database's, so that a database clock ahead of the dispatcher's cannot make it spin on the row."""
    conn.execute(
        """update outbox set due_at = greatest(%s, now() + make_interval(secs => %s)), lease_until = null
           where message_id = %s""",
        [due_at, min_delay_seconds, message_id],
    )


def remove(conn: Connection, message_id: str) -> None:
    conn.execute("delete from outbox where message_id = %s", [message_id])
