"""The dedup index: which ledger message each provider message id became."""

from ledger.receipts import Receipt
from projections import Projection

PROJECTION = Projection(
    "dedup",
    ddl=[
        """create table if not exists provider_messages (
            company_id uuid not null,
            channel_id uuid not null,
            provider_message_id text not null,
            message_id uuid not null,
            conversation_id uuid not null,
            contact_id uuid not null,
            position bigint not null,
            primary key (company_id, channel_id, provider_message_id)
        )"""
    ],
    tables=["provider_messages"],
)


@PROJECTION.on(Receipt.Claimed)
def claimed(cursor, event: Receipt.Claimed, position: int) -> None:
    cursor.execute(
        """insert into provider_messages (company_id, channel_id, provider_message_id, message_id, conversation_id,
               contact_id, position)
           values (%s, %s, %s, %s, %s, %s, %s)""",
        [
            event.company_id,
            event.channel_id,
            event.provider_message_id,
            event.message_id,
            event.conversation_id,
            event.contact_id,
            position,
        ],
    )
