"""Conversations, contacts and dedup receipts."""

from uuid import UUID

from ledger.base import LedgerAggregate
from ledger.ids import natural_id


class Conversation(LedgerAggregate):
    """Keyed by (company, channel, contact address). Holds only what commands need:
    the next seq, the owner and the status. Messages live in the log and the timeline."""

    class Started(LedgerAggregate.Created):
        channel_id: str
        contact_id: str
        contact_address: str
        channel_address: str
        owner_id: str

    class InboundMessageReceived(LedgerAggregate.Event):
        message_id: str
        seq: int
        contact_id: str
        provider_message_id: str
        message_type: str
        body: str
        preview: str
        attachments: list[str]
        sent_at: str | None

        def apply(self, conversation: "Conversation") -> None:
            conversation.last_seq = self.seq

    def __init__(
        self,
        company_id: str,
        actor: str,
        channel_id: str,
        contact_id: str,
        contact_address: str,
        channel_address: str,
        owner_id: str,
    ) -> None:
        self.company_id = company_id
        self.channel_id = channel_id
        self.contact_id = contact_id
        self.participants = [contact_address, channel_address]
        self.owner_id = owner_id
        self.status = "open"
        self.last_seq = 0

    @staticmethod
    def id_for(company_id: str, channel_id: str, contact_address: str) -> UUID:
        return natural_id("conversation", company_id, channel_id, contact_address)

    @classmethod
    def start(
        cls,
        company_id: str,
        channel_id: str,
        contact_id: str,
        contact_address: str,
        channel_address: str,
        owner_id: str,
        actor: str,
    ) -> "Conversation":
        return cls._create(
            cls.Started,
            id=cls.id_for(company_id, channel_id, contact_address),
            company_id=company_id,
            actor=actor,
            channel_id=channel_id,
            contact_id=contact_id,
            contact_address=contact_address,
            channel_address=channel_address,
            owner_id=owner_id,
        )

    def receive_inbound(
        self,
        message_id: UUID,
        provider_message_id: str,
        message_type: str,
        body: str,
        preview: str,
        attachments: list[str],
        sent_at: str | None,
        actor: str,
    ) -> int:
        """Appends the message with the next seq; a concurrent append to the same
        conversation collides on the stream version, so seq never has gaps."""
        seq = self.last_seq + 1
        self._record(
            self.InboundMessageReceived,
            actor,
            message_id=str(message_id),
            seq=seq,
            contact_id=self.contact_id,
            provider_message_id=provider_message_id,
            message_type=message_type,
            body=body,
            preview=preview,
            attachments=attachments,
            sent_at=sent_at,
        )
        return seq


class Contact(LedgerAggregate):
    """Keyed by (company, normalized address) of the address it was first seen with."""

    class Created(LedgerAggregate.Created):
        address: str
        address_kind: str

    class AddressAdded(LedgerAggregate.Event):
        address: str
        address_kind: str

        def apply(self, contact: "Contact") -> None:
            contact.addresses.append(self.address)

    def __init__(self, company_id: str, actor: str, address: str, address_kind: str) -> None:
        self.company_id = company_id
        self.addresses = [address]

    @staticmethod
    def id_for(company_id: str, address: str) -> UUID:
        return natural_id("contact", company_id, address)

    @classmethod
    def create(cls, company_id: str, address: str, address_kind: str, actor: str) -> "Contact":
        return cls._create(
            cls.Created,
            id=cls.id_for(company_id, address),
            company_id=company_id,
            actor=actor,
            address=address,
            address_kind=address_kind,
        )

    def add_address(self, address: str, address_kind: str, actor: str) -> None:
        if address not in self.addresses:
            self._record(self.AddressAdded, actor, address=address, address_kind=address_kind)


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
    ) -> "Receipt":
        return cls._create(
            cls.Claimed,
            id=cls.id_for(company_id, channel_id, provider_message_id),
            company_id=company_id,
            actor=actor,
            channel_id=channel_id,
            provider_message_id=provider_message_id,
            message_id=str(message_id),
            conversation_id=str(conversation_id),
            contact_id=str(contact_id),
        )
