"""Slack incoming webhooks through the official SDK: `POST` JSON `{text}` to the channel's `webhook_url`
credential, its scheme and host replaced by `LEDGER_PROVIDER_URL_SLACK` when that is set. Slack answers
`ok` and no message id, so a sent message has none.

`WebhookClient` takes the URL, the timeout and default headers (the idempotency key); it is given no retry
handlers, as the dispatcher owns retries, and a quiet logger, as the URL is itself a secret.
"""

import http.client
import logging
from urllib.parse import urlsplit, urlunsplit

from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import IDEMPOTENCY_KEY, base_url_problem, classify, no_answer, rejected, scrub, secrets_of

# The SDK logs the webhook URL at DEBUG and every failure at ERROR; the adapter reports failures in its answer.
SDK_LOGGER = logging.getLogger("ledger.providers.slack.sdk")
SDK_LOGGER.setLevel(logging.CRITICAL)


def webhook_url(url: str, base_url: str | None) -> str:
    """The webhook URL at the base URL: its scheme and host replaced (and any base path put before its own)."""
    if base_url is None:
        return url
    base, target = urlsplit(base_url), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + target.path, target.query, ""))


def usable(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class SlackProvider:
    kind = "slack"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        return scrub(self.call(delivery, base_url, timeout), delivery)

    def call(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        if problem := base_url_problem(self.kind, base_url, required=False):
            return rejected(problem)
        url = delivery.credentials.get("webhook_url")
        if not url:
            return rejected("the channel has no Slack webhook_url")
        if not usable(url):
            return rejected("the channel's Slack webhook_url is not an http(s) URL")
        text = "\n".join(part for part in (delivery.body, *delivery.attachments) if part)
        client = WebhookClient(
            webhook_url(url, base_url),
            timeout=timeout,  # type: ignore[arg-type]  # typed int, handed to urllib as is
            default_headers={IDEMPOTENCY_KEY: delivery.message_id},
            logger=SDK_LOGGER,
            retry_handlers=[],
        )
        try:
            response = client.send(text=text)
        except SlackRequestError as error:
            return rejected(f"the Slack webhook could not be called: {type(error).__name__}")
        except (OSError, http.client.HTTPException, UnicodeDecodeError) as error:  # no (readable) answer
            return no_answer(error, timeout)
        return classify(
            response.status_code, response.headers, response.body, None, id_required=False, secrets=secrets_of(delivery)
        )


PROVIDER = SlackProvider()
