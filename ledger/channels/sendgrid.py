"""SendGrid: outbound email through the v3 mail send API. Inbound Parse webhooks arrive with
the seed dialects; until then an inbound webhook on a SendGrid channel is refused (422)."""

from ledger.channels import InboundMessage, WebhookRequest
from ledger.channels._payloads import SignedJsonKind
from ledger.errors import ValidationFailed


class SendgridKind(SignedJsonKind):
    """Status callbacks are the ledger's JSON shape signed with X-Ledger-Signature."""

    name = "sendgrid"
    address_kind = "email"

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        raise ValidationFailed.single(
            "channel", "inbound_not_supported", "SendGrid Inbound Parse is not accepted yet; this channel only sends"
        )


KIND = SendgridKind()
