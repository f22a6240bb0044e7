"""The extraction policy: a contact's name, email and phone found in the text of each inbound
message, recorded as `Contact.FieldExtracted` events naming the message.

Its own consumer of the log, so extraction never contends with ingestion (the webhook's write is
done when this runs). Each message's extractions are keyed by the message, so a replay or a
rebuild of this policy records nothing twice."""

from uuid import UUID

from ledger.application import Ledger
from ledger.channels._payloads import html_to_text
from ledger.extraction import extract_fields
from ledger.messaging import Conversation
from projections import Projection
from projections.runner import Projector

HTML_MESSAGE_TYPES = ("email", "intercom")  # bodies kept as the provider's HTML


def build(ledger: Ledger, projector: Projector) -> Projection:
    policy = Projection("extraction", ddl=[], tables=[], starts_at_head=True)

    @policy.on(Conversation.InboundMessageReceived)
    def extract(cursor, event: Conversation.InboundMessageReceived, position: int) -> None:
        found = extract_fields(message_text(event.message_type, event.body), ledger.default_region)
        if found:
            ledger.record_extractions(UUID(event.contact_id), event.message_id, found)

    return policy


def message_text(message_type: str, body: str) -> str:
    """What a reader of the message sees: an email's HTML without its tags."""
    return html_to_text(body) if message_type in HTML_MESSAGE_TYPES else body
