"""What a benchmark says to the API: a company, a channel and signed provider webhooks.

The benchmarks ship in the wheel (`ledger bench`), so they cannot lean on tests/support.py (which
imports the test suite's conftest, and so pytest)."""

import hashlib
import hmac
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # the load process imports this module, and need not pay for httpx
    import httpx

CHANNEL_ADDRESS = "+18045550100"
TIMESTAMP = "2026-11-22T10:00:00Z"
_provider_ids = itertools.count(1)


@dataclass
class Tenant:
    company_id: str
    api_key: str
    admin_user_id: str
    bot_user_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class ChannelInfo:
    id: str
    kind: str
    address: str
    secret: str


def create_company(http: "httpx.Client", operator_token: str, name: str = "Bench") -> Tenant:
    answer = http.post("/v1/companies", json={"name": name}, headers={"Authorization": f"Bearer {operator_token}"})
    body = answer.raise_for_status().json()
    return Tenant(body["id"], body["api_key"], body["admin_user_id"], body["bot_user_id"])


def create_channel(http: "httpx.Client", tenant: Tenant, address: str = CHANNEL_ADDRESS) -> ChannelInfo:
    answer = http.post("/v1/channels", json={"kind": "sms", "address": address}, headers=tenant.auth)
    body = answer.raise_for_status().json()
    return ChannelInfo(body["id"], body["kind"], body["address"], body["webhook_secret"])


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sender(n: int) -> str:
    """One of 10,000 valid US numbers, never the channel's own address."""
    return f"+1804556{n % 10_000:04d}"


def sms_payload(address: str, sender: str = "+1 804-555-1234", body: str = "Hello", provider_id: str | None = None):
    return {
        "from": sender,
        "to": address,
        "type": "sms",
        "messaging_provider_id": provider_id or f"msg-{next(_provider_ids)}",
        "body": body,
        "attachments": None,
        "timestamp": TIMESTAMP,
    }


def signed_webhook(channel: ChannelInfo, payload: dict) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers of a signed JSON webhook."""
    raw = orjson.dumps(payload)
    return raw, {"Content-Type": "application/json", "X-Ledger-Signature": sign(channel.secret, raw)}


def post_signed(http: "httpx.Client", channel: ChannelInfo, payload: dict) -> "httpx.Response":
    raw, headers = signed_webhook(channel, payload)
    return http.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers)
