"""SMS and MMS from the messaging provider's JSON webhook."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.channels import InboundMessage
from ledger.channels._payloads import SignedJsonKind, preview
from ledger.validation import UtcDatetime


class SmsPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    type: Literal["sms", "mms"] = "sms"
    messaging_provider_id: str = Field(min_length=1)
    body: str = ""
    attachments: list[str] | None = None
    timestamp: UtcDatetime


class SmsKind(SignedJsonKind):
    name = "sms"
    address_kind = "phone"
    payload_model = SmsPayload

    def messages(self, payload: SmsPayload) -> list[InboundMessage]:
        return [
            InboundMessage(
                provider_message_id=payload.messaging_provider_id,
                sender=payload.sender,
                recipient=payload.to,
                body=payload.body,
                preview=preview(payload.body),
                message_type=payload.type,
                attachments=payload.attachments or [],
                sent_at=payload.timestamp,
            )
        ]


KIND = SmsKind()
