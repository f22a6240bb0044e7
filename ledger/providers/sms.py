"""SMS and MMS through the messaging provider: `POST {LEDGER_PROVIDER_URL_SMS}/sms` with the JSON shape of
its inbound webhook (spec section 6) without the provider id, which the answer carries."""

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import post_json


def message_type(delivery: Delivery) -> str:
    if delivery.message_type in ("sms", "mms"):
        return delivery.message_type
    return "mms" if delivery.attachments else "sms"


class SmsProvider:
    kind = "sms"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        payload = {
            "from": delivery.from_address,
            "to": delivery.to,
            "type": message_type(delivery),
            "body": delivery.body,
            "attachments": list(delivery.attachments),
            "timestamp": delivery.queued_at,
            "status_callback": delivery.status_url,
        }
        return post_json(delivery, base_url, timeout, payload, "messaging_provider_id")


PROVIDER = SmsProvider()
