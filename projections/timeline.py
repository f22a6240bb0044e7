"""Conversation timelines: every message of a conversation, ordered by seq."""

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.messaging import Conversation
from projections import Projection

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
        )"""
    ],
    tables=["timeline_messages"],
)


@PROJECTION.on(Conversation.InboundMessageReceived)
def inbound_message_received(cursor, event: Conversation.InboundMessageReceived, position: int) -> None:
    cursor.execute(
        """insert into timeline_messages (conversation_id, seq, id, company_id, direction, author_id, contact_id,
               body, attachments, message_type, sent_at, recorded_at, status, provider_message_id, position)
           values (%s, %s, %s, %s, 'inbound', null, %s, %s, %s, %s, %s, %s, 'received', %s, %s)""",
        [
            event.originator_id,
            event.seq,
            event.message_id,
            event.company_id,
            event.contact_id,
            event.body,
            Jsonb(event.attachments),
            event.message_type,
            event.sent_at,
            event.recorded_at,
            event.provider_message_id,
            position,
        ],
    )


def messages_of(conn: Connection, conversation_id: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            """select id, seq, direction, author_id, contact_id, body, attachments, message_type as type, sent_at,
                      recorded_at, status, provider_message_id
               from timeline_messages where conversation_id = %s order by seq""",
            [conversation_id],
        ).fetchall()
