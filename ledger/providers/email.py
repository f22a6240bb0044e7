"""Email through the Xillio provider: `POST {LEDGER_PROVIDER_URL_EMAIL}/email` with the JSON shape of its
inbound webhook (spec section 6) without the provider id, which the answer carries as `xillio_id`."""

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import post_json


class EmailProvider:
    kind = "email"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        payload = {
            "from": delivery.from_address,
            "to": delivery.to,
            "body": delivery.body,
            "attachments": list(delivery.attachments),
            "timestamp": delivery.queued_at,
            "status_callback": delivery.status_url,
        }
        return post_json(delivery, base_url, timeout, payload, "xillio_id")


PROVIDER = EmailProvider()
