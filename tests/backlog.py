"""A large backlog written straight through the ledger application, many events per commit."""

from uuid import uuid4

from ledger.application import Ledger
from ledger.contacts import Contact
from ledger.ids import natural_id
from ledger.messaging import Conversation
from ledger.receipts import Receipt


def write_backlog(
    ledger: Ledger, company_id: str, channel_id: str, bot_id: str, conversations: int, messages_each: int
) -> int:
    """Appends conversations with their contacts, messages and receipts; returns the head position."""
    actor = f"provider:{channel_id}"
    position = 0
    for index in range(conversations):
        sender = f"+1804555{index:04d}"
        address_key = ledger.address_key(sender)
        contact = Contact.create(company_id, sender, address_key, "phone", actor)
        conversation = Conversation.start(
            company_id, channel_id, str(contact.id), sender, address_key, "+18045550100", bot_id, actor
        )
        receipts = []
        for number in range(messages_each):
            provider_id = f"backlog-{uuid4().hex}"
            message_id = natural_id("message", provider_id)
            conversation.receive_inbound(
                message_id, provider_id, "sms", f"message {number}", f"message {number}", [], None, actor
            )
            receipts.append(
                Receipt.claim(company_id, channel_id, provider_id, message_id, conversation.id, contact.id, actor)
            )
        position = ledger.commit(contact, conversation, *receipts)
    return position
