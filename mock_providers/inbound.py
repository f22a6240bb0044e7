"""Inbound webhooks as each provider sends them: the body it posts and the signature header it adds."""

import hmac
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from twilio.request_validator import RequestValidator

from mock_providers.models import InboundAnswer, InboundRequest

RELAY_HEADER = "X-Ledger-Mock-Relay"  # on every request POST /_inbound relays


def signed_json(payload: dict[str, Any], secret: str, header: str, digest: str) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(payload)
    signature = hmac.new(secret.encode(), raw, digest).hexdigest()
    return raw, {"Content-Type": "application/json", header: f"{digest}={signature}"}


def form_value(value: Any) -> str:
    """A form field's text: strings as they are, anything else as JSON (`3`, `true`)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def signed_twilio_form(url: str, payload: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """Twilio signs the URL followed by every parameter, sorted by name, with the auth token."""
    params = {name: form_value(value) for name, value in payload.items()}
    signature = RequestValidator(secret).compute_signature(url, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return urlencode(params).encode(), headers


def signed_request(inbound: InboundRequest) -> tuple[bytes, dict[str, str]]:
    if inbound.kind == "twilio":
        return signed_twilio_form(inbound.webhook_url, inbound.payload, inbound.secret)
    if inbound.kind == "intercom":
        return signed_json(inbound.payload, inbound.secret, "X-Hub-Signature", "sha1")
    return signed_json(inbound.payload, inbound.secret, "X-Ledger-Signature", "sha256")


async def send_inbound(http: httpx.AsyncClient, inbound: InboundRequest) -> InboundAnswer:
    """Posts the signed webhook; raises httpx.HTTPError when the ledger cannot be reached."""
    content, headers = signed_request(inbound)
    headers[RELAY_HEADER] = "1"  # the ledger's keyless demo access refuses what the mock relays
    response = await http.post(inbound.webhook_url, content=content, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return InboundAnswer(status=response.status_code, body=body)
