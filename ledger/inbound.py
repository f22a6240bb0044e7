"""Conversations a provider keys itself (Intercom's), received whole: each of their messages appended
exactly once, in order, the new ones of a delivery in one transaction. Mixed into the Ledger."""

from dataclasses import dataclass
from uuid import UUID

from ledger.addresses import normalize
from ledger.channels import InboundMessage, Thread, intercom
from ledger.contacts import Contact
from ledger.errors import ValidationFailed
from ledger.ids import natural_id
from ledger.messaging import Conversation
from ledger.receipts import Receipt
from ledger.tenancy import Channel
from ledger.validation import utc_iso


@dataclass(frozen=True)
class Ingested:
    message_id: str
    conversation_id: str
    contact_id: str
    position: int
    deduplicated: bool


class ProviderConversations:
    """The Ledger's commands for provider-keyed conversations (self is the Ledger)."""

    def import_intercom(self, channel: Channel, document: object, actor: str) -> list[Ingested]:
        """An Intercom conversation (or the notification envelope around one), already parsed from JSON,
        received on the channel as its webhook receives it, for callers authenticated otherwise than by
        Intercom's signature. Raises ValidationFailed before anything is appended."""
        return self.receive_thread(channel, intercom.conversation_messages(document), actor)

    def receive_thread(self, channel: Channel, messages: list[InboundMessage], actor: str) -> list[Ingested]:
        """The messages of one provider-keyed conversation, in order (each with the conversation's
        contact as its sender). Those not received before are appended with their receipts, and the
        conversation and contact when new, in one transaction; the others answer with their original
        ids. A concurrent delivery of the same conversation collides on a stream version and retries,
        then finds its messages received."""
        if not messages or any(message.thread != messages[0].thread for message in messages):
            raise ValidationFailed.single("conversation", "no_conversation", "no messages of one conversation")
        first = messages[0]
        address_kind = first.sender_kind or "handle"
        address = normalize(address_kind, first.sender, "from", self.default_region)
        return self.retry_on_conflict(
            lambda: self._receive_thread_once(channel, first.thread, address, address_kind, messages, actor)
        )

    def _receive_thread_once(
        self, channel: Channel, thread: Thread, address: str, address_kind: str, messages: list, actor: str
    ) -> list[Ingested]:
        company_id = channel.company_id
        receipt_ids = [Receipt.id_for(company_id, thread.provider, receipt_key(thread, m)) for m in messages]
        receipts = [self.find(Receipt, receipt_id) for receipt_id in receipt_ids]
        seen = zip(messages, receipt_ids, receipts, strict=True)
        new = [(message, receipt_id) for message, receipt_id, receipt in seen if receipt is None]
        if not new:
            position = self.head_position()
            return [Ingested(r.message_id, r.conversation_id, r.contact_id, position, True) for r in receipts]
        contact, conversation = self.thread_participants(channel, thread, address, address_kind, actor)
        if any(message.direction == "inbound" for message, _ in new):
            conversation.reopen(actor)  # a closed conversation is back in the queue
        claims, appended = [], {}
        for message, receipt_id in new:
            message_id = natural_id("message", receipt_id)
            append_message(conversation, message, message_id, address, actor)
            key = receipt_key(thread, message)
            claims.append(
                Receipt.claim(
                    company_id, str(channel.id), key, message_id, conversation.id, contact.id, actor, thread.provider
                )
            )
            appended[receipt_id] = str(message_id)
        position = self.commit(contact, conversation, *claims)
        return [
            Ingested(appended[receipt_id], str(conversation.id), str(contact.id), position, False)
            if receipt is None
            else Ingested(receipt.message_id, receipt.conversation_id, receipt.contact_id, position, True)
            for receipt_id, receipt in zip(receipt_ids, receipts, strict=True)
        ]

    def thread_participants(
        self, channel: Channel, thread: Thread, address: str, address_kind: str, actor: str
    ) -> tuple[Contact, Conversation]:
        """The conversation keyed by the provider's id, and its contact, who learns the address when it is
        a new one of theirs (an email Intercom did not know before). A new conversation starts in the
        unassigned queue: its replies are written in the provider's tool, where the bot cannot answer."""
        conversation_id = Conversation.id_for_thread(channel.company_id, thread.provider, thread.conversation_id)
        conversation = self.find(Conversation, conversation_id)
        if conversation is None:
            return self.participants(channel, address, address_kind, actor, lambda: None, conversation_id)
        contact = self.get_owned(Contact, UUID(conversation.contact_id), channel.company_id)
        contact.add_address(address, address_kind, actor)
        return contact, conversation


def receipt_key(thread: Thread, message: InboundMessage) -> str:
    """Unique in the provider's namespace: a part id is only known unique in its conversation's."""
    return f"{thread.conversation_id}/{message.provider_message_id}"


def append_message(
    conversation: Conversation, message: InboundMessage, message_id: UUID, address: str, actor: str
) -> None:
    fields = (message.message_type, message.body, message.preview, message.attachments, utc_iso(message.sent_at))
    if message.direction == "inbound":
        conversation.receive_inbound(message_id, message.provider_message_id, *fields, actor, sender=address)
    else:
        conversation.import_outbound(message_id, message.provider_message_id, *fields, message.author, actor)
