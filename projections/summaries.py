"""Conversation summaries: one row per conversation, for lists and timeline headers."""

import base64
from datetime import datetime
from uuid import UUID

import orjson
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.contacts import ERASED, Contact
from ledger.errors import ValidationFailed
from ledger.messaging import Conversation
from projections import Projection

PROJECTION = Projection(
    "summaries",
    ddl=[
        """create table if not exists conversation_summaries (
            id uuid primary key,
            company_id uuid not null,
            channel_id uuid not null,
            contact_id uuid not null,
            owner_id uuid,
            status text not null,
            participants jsonb not null,
            message_count integer not null default 0,
            last_message_at timestamptz,
            last_message_preview text,
            created_at timestamptz not null,
            updated_at timestamptz not null
        )""",
        """create index if not exists conversation_summaries_activity
            on conversation_summaries (company_id, updated_at desc, id desc)""",
        "alter table conversation_summaries add column if not exists number integer",
        # Conversations summarised before numbers existed are numbered in the order they started.
        """update conversation_summaries summary set number = numbered.number
           from (select id, row_number() over (partition by company_id order by created_at, id) as number
                 from conversation_summaries where number is null) numbered
           where summary.id = numbered.id""",
        """create unique index if not exists conversation_summaries_number
            on conversation_summaries (company_id, number)""",
    ],
    tables=["conversation_summaries"],
)
COLUMNS = """id, number, channel_id, contact_id, owner_id, status, participants, message_count, last_message_at,
             last_message_preview, created_at, updated_at"""
FILTERS = ("owner_id", "channel_id", "contact_id", "status")


@PROJECTION.on(Conversation.Started)
def started(cursor, event: Conversation.Started, position: int) -> None:
    """A new summary, numbered next in its company: batches apply the log in order, one at a time
    (the projection's lock), so numbers follow the log and a rebuild gives the same ones."""
    cursor.execute(
        """insert into conversation_summaries (id, number, company_id, channel_id, contact_id, owner_id, status,
               participants, created_at, updated_at)
           select %s, coalesce(max(number), 0) + 1, %s, %s, %s, %s, 'open', %s, %s, %s
           from conversation_summaries where company_id = %s""",
        [
            event.originator_id,
            event.company_id,
            event.channel_id,
            event.contact_id,
            event.owner_id,
            Jsonb([event.contact_address, event.channel_address]),
            event.recorded_at,
            event.recorded_at,
            event.company_id,
        ],
    )


@PROJECTION.on(Conversation.InboundMessageReceived)
@PROJECTION.on(Conversation.OutboundMessageQueued)
@PROJECTION.on(Conversation.OutboundMessageImported)
def message_added(cursor, event, position: int) -> None:
    sender = getattr(event, "sender", None)  # the address, known again after an erasure
    cursor.execute(
        """update conversation_summaries
           set message_count = message_count + 1, last_message_at = %s, last_message_preview = %s, updated_at = %s,
               participants = case when %s::text is null then participants
                                   else jsonb_set(participants, '{0}', to_jsonb(%s::text)) end
           where id = %s""",
        [event.recorded_at, event.preview, event.recorded_at, sender, sender, event.originator_id],
    )


@PROJECTION.on(Contact.PersonalDataErased)
def personal_data_erased(cursor, event: Contact.PersonalDataErased, position: int) -> None:
    """What the erased events read back as: the address and the last preview are "[erased]"."""
    cursor.execute(
        """update conversation_summaries
           set participants = jsonb_set(participants, '{0}', to_jsonb(%s::text)),
               last_message_preview = case when last_message_preview is null then null else %s end
           where company_id = %s and contact_id = %s""",
        [ERASED, ERASED, event.company_id, event.originator_id],
    )


@PROJECTION.on(Conversation.OwnerTransferred)
def owner_transferred(cursor, event: Conversation.OwnerTransferred, position: int) -> None:
    cursor.execute(
        "update conversation_summaries set owner_id = %s, updated_at = %s where id = %s",
        [event.to_owner_id, event.recorded_at, event.originator_id],
    )


@PROJECTION.on(Conversation.Closed)
@PROJECTION.on(Conversation.Reopened)
def status_changed(cursor, event, position: int) -> None:
    status = "closed" if isinstance(event, Conversation.Closed) else "open"
    cursor.execute(
        "update conversation_summaries set status = %s, updated_at = %s where id = %s",
        [status, event.recorded_at, event.originator_id],
    )


def get_summary(conn: Connection, company_id: str, conversation_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"select {COLUMNS} from conversation_summaries where company_id = %s and id = %s",
            [company_id, conversation_id],
        ).fetchone()


def get_by_number(conn: Connection, company_id: str, number: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"select {COLUMNS} from conversation_summaries where company_id = %s and number = %s", [company_id, number]
        ).fetchone()


def list_summaries(
    conn: Connection, company_id: str, filters: dict[str, object], limit: int, cursor_token: str | None
) -> tuple[list[dict], str | None]:
    """Newest activity first; the cursor is the (updated_at, id) of the last item served."""
    where, params = ["company_id = %s"], [company_id]
    for name in FILTERS:
        if filters.get(name) is not None:
            where.append(f"{name} = %s")
            params.append(filters[name])
    if cursor_token:
        updated_at, last_id = decode_cursor(cursor_token)
        where.append("(updated_at, id) < (%s, %s)")
        params += [updated_at, last_id]
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            f"""select {COLUMNS} from conversation_summaries where {" and ".join(where)}
                order by updated_at desc, id desc limit %s""",
            [*params, limit + 1],
        ).fetchall()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last["updated_at"], str(last["id"]))


def encode_cursor(updated_at: datetime, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([updated_at.isoformat(), conversation_id])).decode()


def decode_cursor(token: str) -> tuple[datetime, UUID]:
    try:
        updated_at, conversation_id = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(updated_at), UUID(conversation_id)
    except (ValueError, TypeError, AttributeError) as error:
        raise ValidationFailed.single("cursor", "invalid_cursor", "cursor is not one this API issued") from error
