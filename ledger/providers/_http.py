"""What every provider adapter shares: classifying an HTTP answer, reading Retry-After, describing
a call that got no answer, keeping credentials out of reasons, and the JSON post of the `sms`,
`email` and `whatsapp` kinds (spec section 7).

Classification: 2xx sent; 429 retry (with Retry-After); 408 and 5xx retry; anything else rejected.
A call that got no answer (timeout, refused, reset, DNS) is a retry with no HTTP status.
"""

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ledger.providers import Delivery, ProviderAnswer

REASON_LIMIT = 200
NO_MESSAGE_ID = "answer without a message id"
IDEMPOTENCY_KEY = "Idempotency-Key"


def header(headers: Any, name: str) -> str | None:
    """A header's value from any headers object (dict, HTTPMessage, requests' or httpx' headers),
    matched regardless of case."""
    if headers is None:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not (value := value.strip()):
        return None
    with contextlib.suppress(ValueError):
        seconds = float(value)
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def shorten(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_text(body: bytes | str | None, secrets: Sequence[str] = ()) -> str:
    """The provider's error message: from the usual JSON fields when the body is JSON, else the text itself;
    credentials masked before it is shortened, so that no part of one is left."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    return shorten(redact(json_message(document) or text, secrets))


def json_message(document: Any) -> str | None:
    if isinstance(document, str):
        return document
    if isinstance(document, list):
        messages = [message for item in document if (message := json_message(item))]
        return "; ".join(messages) or None
    if isinstance(document, dict):
        for name in ("message", "error", "errors", "detail", "title", "error_description"):
            if (message := json_message(document.get(name))) is not None:
                return message
    return None


def classify(
    status: int,
    headers: Any,
    body: bytes | str | None,
    provider_message_id: str | None,
    *,
    id_required: bool = True,
    secrets: Sequence[str] = (),
) -> ProviderAnswer:
    """The outcome of an HTTP answer. A 2xx without the provider's message id (when one is expected) is a
    provider bug: rejected, as resending a message that may have been accepted is worse."""
    if 200 <= status < 300:
        if provider_message_id is None and id_required:
            return ProviderAnswer("rejected", status, reason=NO_MESSAGE_ID)
        return ProviderAnswer("sent", status, provider_message_id=provider_message_id)
    text = error_text(body, secrets)
    reason = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    if status == 429:
        retry_after = parse_retry_after(header(headers, "Retry-After"))
        return ProviderAnswer("retry", status, reason=reason, retry_after=retry_after)
    if status == 408 or 500 <= status < 600:
        return ProviderAnswer("retry", status, reason=reason)
    return ProviderAnswer("rejected", status, reason=reason)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: its cause and context chain, and the exceptions libraries keep in
    `args` or `reason` (requests and urllib3 wrap the socket error that way)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


def no_answer(error: BaseException, timeout: float) -> ProviderAnswer:
    """A call that got no HTTP answer: always a retry. The reason names the socket-level error, never the URL."""
    chain = list(causes(error))
    timed_out = f"no answer within {timeout:g} s"
    if any(isinstance(item, TimeoutError) for item in chain):
        return ProviderAnswer("retry", None, reason=timed_out)
    for item in chain:
        if isinstance(item, OSError) and item.strerror:
            return ProviderAnswer("retry", None, reason=f"could not reach the provider: {item.strerror.lower()}")
    if any("timeout" in type(item).__name__.lower() for item in chain):
        return ProviderAnswer("retry", None, reason=timed_out)
    return ProviderAnswer("retry", None, reason=f"could not reach the provider: {type(error).__name__}")


def secrets_of(delivery: Delivery) -> list[str]:
    """What a reason must never show: the channel's credentials, and the recipient's address (a reason is
    stored unsealed, so it must hold no personal data that an erasure would have to reach)."""
    values = [delivery.secret, *delivery.credentials.values(), delivery.to, delivery.to.lstrip("+")]
    return sorted({value for value in values if isinstance(value, str) and len(value) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def scrub(answer: ProviderAnswer, delivery: Delivery) -> ProviderAnswer:
    """The answer with any credential of the channel masked in its reason: a last guard, as `classify`
    masks the provider's text (which may echo one back) before shortening it."""
    if not answer.reason:
        return answer
    reason = redact(answer.reason, secrets_of(delivery))
    if reason == answer.reason:
        return answer
    return ProviderAnswer(answer.outcome, answer.http_status, answer.provider_message_id, reason, answer.retry_after)


def rejected(reason: str) -> ProviderAnswer:
    return ProviderAnswer("rejected", None, reason=reason)


def base_url_problem(kind: str, base_url: str | None, *, required: bool) -> str | None:
    """Why the configured base URL cannot be used, or None when it can."""
    variable = f"LEDGER_PROVIDER_URL_{kind.upper()}"
    if base_url is None:
        return f"{variable} is not set" if required else None
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return f"{variable} is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{variable} is not an http(s) URL"
    return None


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def json_id(body: bytes | str, field: str) -> str | None:
    """The provider's message id from a JSON answer, or None when there is none."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    value = document.get(field) if isinstance(document, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def request_headers(delivery: Delivery) -> dict[str, str]:
    headers = {IDEMPOTENCY_KEY: delivery.message_id, "Accept": "application/json"}
    if api_key := delivery.credentials.get("api_key"):
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def post_json(
    delivery: Delivery, base_url: str | None, timeout: float, payload: Mapping[str, Any], id_field: str
) -> ProviderAnswer:
    """`POST {base_url}/{kind}` with the payload as JSON: the `sms`, `email` and `whatsapp` providers,
    which have no public service, so an unset base URL is a rejection."""
    if problem := base_url_problem(delivery.kind, base_url, required=True):
        return rejected(problem)
    assert base_url is not None
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(join_url(base_url, delivery.kind), json=payload, headers=request_headers(delivery))
    except httpx.RequestError as error:  # no (readable) answer: timeout, refused, reset, broken encoding
        return scrub(no_answer(error, timeout), delivery)
    message_id = json_id(response.content, id_field)
    answer = classify(
        response.status_code, response.headers, response.content, message_id, secrets=secrets_of(delivery)
    )
    return scrub(answer, delivery)
