"""Receipts: natural keys claimed in the same transaction as the event they guard, so that a
second claim of the same key fails on the event store's primary key and rolls back."""

from uuid import UUID

from eventsourcing.utils import register_topic

from ledger.base import LedgerAggregate
from ledger.ids import natural_id


class Receipt(LedgerAggregate):
    """Claims a provider message id. Saved in the same transaction as the message it
    guards: a second claim of the same key fails on the primary key and rolls back."""

    class Claimed(LedgerAggregate.Created):
        channel_id: str
        provider_message_id: str
        message_id: str
        conversation_id: str
        contact_id: str

    def __init__(
        self,
        company_id: str,
        actor: str,
        channel_id: str,
        provider_message_id: str,
        message_id: str,
        conversation_id: str,
        contact_id: str,
    ) -> None:
        self.company_id = company_id
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.contact_id = contact_id

    @staticmethod
    def id_for(company_id: str, channel_id: str, provider_message_id: str) -> UUID:
        return natural_id("receipt", company_id, channel_id, provider_message_id)

    @classmethod
    def claim(
        cls,
        company_id: str,
        channel_id: str,
        provider_message_id: str,
        message_id: UUID,
        conversation_id: UUID,
        contact_id: UUID,
        actor: str,
        scope: str | None = None,
    ) -> "Receipt":
        """scope: what the provider message id is unique in, when not the channel (a provider's name)."""
        return cls._create(
            cls.Claimed,
            id=cls.id_for(company_id, scope or channel_id, provider_message_id),
            company_id=company_id,
            actor=actor,
            channel_id=channel_id,
            provider_message_id=provider_message_id,
            message_id=str(message_id),
            conversation_id=str(conversation_id),
            contact_id=str(contact_id),
        )


class SendReceipt(LedgerAggregate):
    """Claims an Idempotency-Key of a company for one outbound message, in the same
    transaction that queues it: a concurrent identical request collides on this id."""

    class Claimed(LedgerAggregate.Created):
        idempotency_key: str
        message_id: str
        conversation_id: str

    def __init__(self, company_id: str, actor: str, idempotency_key: str, message_id: str, conversation_id: str):
        self.company_id = company_id
        self.message_id = message_id
        self.conversation_id = conversation_id

    @staticmethod
    def id_for(company_id: str, idempotency_key: str) -> UUID:
        return natural_id("send-receipt", company_id, idempotency_key)

    @classmethod
    def claim(
        cls, company_id: str, idempotency_key: str, message_id: UUID, conversation_id: UUID, actor: str
    ) -> "SendReceipt":
        return cls._create(
            cls.Claimed,
            id=cls.id_for(company_id, idempotency_key),
            company_id=company_id,
            actor=actor,
            idempotency_key=idempotency_key,
            message_id=str(message_id),
            conversation_id=str(conversation_id),
        )


class OutboundReceipt(LedgerAggregate):
    """Claims a provider's id of an outbound message on a channel, saved with the event
    that records the send, so that status callbacks find their message."""

    class Claimed(LedgerAggregate.Created):
        channel_id: str
        provider_message_id: str
        message_id: str
        conversation_id: str

    def __init__(
        self,
        company_id: str,
        actor: str,
        channel_id: str,
        provider_message_id: str,
        message_id: str,
        conversation_id: str,
    ):
        self.company_id = company_id
        self.message_id = message_id
        self.conversation_id = conversation_id

    @staticmethod
    def id_for(channel_id: str, provider_message_id: str) -> UUID:
        return natural_id("outbound-receipt", channel_id, provider_message_id)

    @classmethod
    def claim(
        cls,
        company_id: str,
        channel_id: str,
        provider_message_id: str,
        message_id: str,
        conversation_id: UUID,
        actor: str,
    ) -> "OutboundReceipt":
        return cls._create(
            cls.Claimed,
            id=cls.id_for(channel_id, provider_message_id),
            company_id=company_id,
            actor=actor,
            channel_id=channel_id,
            provider_message_id=provider_message_id,
            message_id=message_id,
            conversation_id=str(conversation_id),
        )


# Receipts moved here from ledger.messaging: events stored under the old topics still resolve.
register_topic("ledger.messaging:Receipt", Receipt)
register_topic("ledger.messaging:Receipt.Claimed", Receipt.Claimed)
