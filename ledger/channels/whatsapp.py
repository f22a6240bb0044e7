"""WhatsApp messages; the receiving address is the channel's own."""

from pydantic import BaseModel, ConfigDict, Field

from ledger.channels import InboundMessage
from ledger.channels._payloads import SignedJsonKind, preview
from ledger.validation import UtcDatetime


class WhatsappPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1)
    text: str = ""
    channel_message_id: str = Field(min_length=1)
    timestamp: UtcDatetime | None = None


class WhatsappKind(SignedJsonKind):
    name = "whatsapp"
    address_kind = "phone"
    payload_model = WhatsappPayload

    def messages(self, payload: WhatsappPayload) -> list[InboundMessage]:
        return [
            InboundMessage(
                provider_message_id=payload.channel_message_id,
                sender=payload.sender,
                recipient=None,
                body=payload.text,
                preview=preview(payload.text),
                message_type="whatsapp",
                sent_at=payload.timestamp,
            )
        ]


KIND = WhatsappKind()
