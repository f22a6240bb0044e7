"""WhatsApp through the channel provider: `POST {LEDGER_PROVIDER_URL_WHATSAPP}/whatsapp` with the JSON shape
of its inbound webhook (spec section 6) without the provider id, which the answer carries as
`channel_message_id`. The shape has text only: attachments are not sent."""

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import post_json


class WhatsappProvider:
    kind = "whatsapp"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        payload = {
            "from": delivery.from_address,
            "to": delivery.to,
            "text": delivery.body,
            "timestamp": delivery.queued_at,
            "status_callback": delivery.status_url,
        }
        return post_json(delivery, base_url, timeout, payload, "channel_message_id")


PROVIDER = WhatsappProvider()
