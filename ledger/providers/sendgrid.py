"""SendGrid's v3 Mail Send through the official SDK: `POST /v3/mail/send`, bearer the channel's `api_key`
credential; the message id comes back in the `X-Message-Id` header of the 202.

The SDK takes its base URL as `host` (`LEDGER_PROVIDER_URL_SENDGRID`), the idempotency key as a request header
and the timeout per call. Its HTTP client (python_http_client, on urllib) raises an `HTTPError` carrying
status, headers and body for every non-2xx answer, and urllib's errors when no answer came.
"""

import http.client
import logging

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from ledger.providers import Delivery, ProviderAnswer
from ledger.providers._http import (
    IDEMPOTENCY_KEY,
    base_url_problem,
    classify,
    header,
    no_answer,
    rejected,
    scrub,
    secrets_of,
)

SENDGRID_API = "https://api.sendgrid.com"
SUBJECT_LIMIT = 78

# python_http_client logs every request's headers, the bearer key among them, at DEBUG.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


def subject(body: str) -> str:
    """Deliveries carry no subject: the body's first line stands in for one (SendGrid requires it)."""
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    if not first_line:
        return "(no subject)"
    return first_line if len(first_line) <= SUBJECT_LIMIT else first_line[: SUBJECT_LIMIT - 1].rstrip() + "…"


def mail(delivery: Delivery) -> dict:
    text = delivery.body
    if delivery.attachments:  # SendGrid attachments are inline base64 content: the ledger has URLs, so it lists them
        text = "\n\n".join(part for part in (text, "\n".join(delivery.attachments)) if part)
    return {
        "personalizations": [{"to": [{"email": delivery.to}]}],
        "from": {"email": delivery.from_address},
        "subject": subject(delivery.body),
        "content": [{"type": "text/plain", "value": text or " "}],
    }


class SendgridProvider:
    kind = "sendgrid"

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        return scrub(self.call(delivery, base_url, timeout), delivery)

    def call(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        if problem := base_url_problem(self.kind, base_url, required=False):
            return rejected(problem)
        api_key = delivery.credentials.get("api_key")
        if not api_key:
            return rejected("the channel has no SendGrid api_key")
        client = SendGridAPIClient(api_key=api_key, host=(base_url or SENDGRID_API).rstrip("/"))
        try:
            response = client.client.mail.send.post(
                request_body=mail(delivery), request_headers={IDEMPOTENCY_KEY: delivery.message_id}, timeout=timeout
            )
        except HTTPError as error:  # any non-2xx answer
            return classify(error.status_code, error.headers, error.body, None, secrets=secrets_of(delivery))
        except (OSError, http.client.HTTPException) as error:  # no answer: URLError, timeout, refused, reset
            return no_answer(error, timeout)
        message_id = header(response.headers, "X-Message-Id")
        return classify(
            response.status_code, response.headers, response.body, message_id or None, secrets=secrets_of(delivery)
        )


PROVIDER = SendgridProvider()
