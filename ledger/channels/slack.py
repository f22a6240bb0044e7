"""Slack incoming webhooks: outbound only. The ledger posts to the channel's webhook URL;
Slack posts nothing back, so an inbound webhook on a Slack channel is refused."""

from ledger.channels import InboundMessage, StatusReport, WebhookRequest
from ledger.errors import ValidationFailed


def outbound_only() -> ValidationFailed:
    return ValidationFailed.single("channel", "outbound_only", "a slack channel only sends; it receives nothing")


class SlackKind:
    name = "slack"
    address_kind = "handle"
    acknowledgement = None

    def verify(self, secret: str, request: WebhookRequest) -> None:
        """Nothing is signed, and nothing is accepted: parse refuses."""

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        raise outbound_only()

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        raise outbound_only()


KIND = SlackKind()
