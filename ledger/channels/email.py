"""Email from the email provider's JSON webhook. The HTML body is kept raw."""

from pydantic import BaseModel, ConfigDict, Field

from ledger.channels import InboundMessage
from ledger.channels._payloads import SignedJsonKind, html_to_text, preview
from ledger.validation import UtcDatetime


class EmailPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    xillio_id: str = Field(min_length=1)
    body: str = ""
    attachments: list[str] | None = None
    timestamp: UtcDatetime


class EmailKind(SignedJsonKind):
    name = "email"
    address_kind = "email"
    payload_model = EmailPayload

    def messages(self, payload: EmailPayload) -> list[InboundMessage]:
        return [
            InboundMessage(
                provider_message_id=payload.xillio_id,
                sender=payload.sender,
                recipient=payload.to,
                body=payload.body,
                preview=preview(html_to_text(payload.body)),
                message_type="email",
                attachments=payload.attachments or [],
                sent_at=payload.timestamp,
            )
        ]


KIND = EmailKind()
