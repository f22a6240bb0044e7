"""Helpers shared by the tests: tenants, channels and signed provider webhooks."""

import hashlib
import hmac
import itertools
import threading
import time
from collections.abc import Callable

import httpx
import orjson
import psycopg

from benchmarks.client import ChannelInfo, Tenant
from tests.conftest import OPERATOR_TOKEN

_provider_ids = itertools.count(1)


def create_company(client: httpx.Client, name: str = "Acme", operator_token: str = OPERATOR_TOKEN) -> Tenant:
    response = client.post("/v1/companies", json={"name": name}, headers={"Authorization": f"Bearer {operator_token}"})
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(body["id"], body["api_key"], body["admin_user_id"], body["bot_user_id"])


def create_channel(
    client: httpx.Client, tenant: Tenant, kind: str = "sms", address: str = "+18045550100", **extra
) -> ChannelInfo:
    response = client.post("/v1/channels", json={"kind": kind, "address": address, **extra}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    body = response.json()
    return ChannelInfo(body["id"], body["kind"], body["address"], body["webhook_secret"])


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sms_payload(channel: ChannelInfo, sender: str = "+1 804-555-1234", body: str = "Hello", **fields) -> dict:
    return {
        "from": sender,
        "to": channel.address,
        "type": "sms",
        "messaging_provider_id": f"msg-{next(_provider_ids)}",
        "body": body,
        "attachments": None,
        "timestamp": "2026-11-22T10:00:00Z",
        **fields,
    }


def post_signed(client: httpx.Client, channel: ChannelInfo, payload: dict | bytes) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "X-Ledger-Signature": sign(channel.secret, raw)}
    return client.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers)


def read_conversation(client: httpx.Client, tenant: Tenant, conversation_id: str, min_position: int | None = None):
    """The conversation's summary and timeline, once its projections reached min_position."""
    params = {} if min_position is None else {"min_position": min_position}
    response = client.get(f"/v1/conversations/{conversation_id}", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


def count_events(db_url: str, topic_suffix: str = "") -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select count(*) from ledger_events where topic like %s", [f"%{topic_suffix}"]).fetchone()[
            0
        ]


def poll(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> object:
    """The condition's first truthy value, checked every 20 ms until the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        pause.wait(0.02)
    return value


class MockProviders:
    """The mock providers' control endpoints (spec section 7), over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def requests(self) -> list[dict]:
        return self.http.get("/_requests").raise_for_status().json()

    def faults(self, *kinds: str, retry_after: float = 1, delay_seconds: float = 2.0) -> None:
        """Fails the next calls with these faults, in order."""
        body = {"next": list(kinds), "retry_after": retry_after, "delay_seconds": delay_seconds}
        self.http.put("/_faults", json=body).raise_for_status()

    def random_faults(self, rate: float, kinds: list[str], seed: int, retry_after: float, delay_seconds: float) -> None:
        body = {"rate": rate, "kinds": kinds, "seed": seed, "retry_after": retry_after, "delay_seconds": delay_seconds}
        self.http.put("/_faults", json=body).raise_for_status()

    def callbacks(self, *statuses: str, delay_seconds: float = 0.2) -> None:
        self.http.put(
            "/_callbacks", json={"statuses": list(statuses), "delay_seconds": delay_seconds}
        ).raise_for_status()

    def reset(self) -> None:
        for control in ("/_faults", "/_requests", "/_callbacks"):
            self.http.delete(control).raise_for_status()


SETTLED = ("sent", "delivered", "undelivered", "failed", "read")


def queue_message(
    client: httpx.Client, tenant: Tenant, channel: ChannelInfo, to: str, body: str = "Hi", key: str | None = None
) -> httpx.Response:
    headers = {**tenant.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post("/v1/messages", json={"channel_id": channel.id, "to": to, "body": body}, headers=headers)


def read_message(client: httpx.Client, tenant: Tenant, message_id: str) -> dict:
    response = client.get(f"/v1/messages/{message_id}", headers=tenant.auth)
    assert response.status_code in (200, 404), response.text
    return response.json()


def settled_message(client: httpx.Client, tenant: Tenant, message_id: str, timeout: float = 20.0) -> dict:
    """The message once the dispatcher is done with it and its read model shows that."""

    def settled() -> dict | None:
        message = read_message(client, tenant, message_id)
        done = message.get("status") in SETTLED and all(a["outcome"] for a in message["attempts"][-1:])
        return message if done else None

    return poll(settled, timeout, what=f"message {message_id} settling")
