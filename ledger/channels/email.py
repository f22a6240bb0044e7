"""Email from the email provider's JSON webhook. The HTML body is kept raw."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ledger.channels import InboundMessage, WebhookRequest
from ledger.channels._payloads import html_to_text, parse_json, preview, verify_hmac


class EmailPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    xillio_id: str = Field(min_length=1)
    body: str = ""
    attachments: list[str] | None = None
    timestamp: datetime


class EmailKind:
    name = "email"
    address_kind = "email"
    acknowledgement = None

    def verify(self, secret: str, request: WebhookRequest) -> None:
        verify_hmac(secret, request, "x-ledger-signature", "sha256")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        payload = parse_json(request, EmailPayload)
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
