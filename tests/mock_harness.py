"""Shared by the mock providers' tests: a stand-in for the ledger that records what it is sent,
an SDK client pointed at the mock, and small calls."""

from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.conftest import Served

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-auth-token"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@dataclass
class Received:
    url: str
    headers: httpx.Headers
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


def receiver_app(received: list[Received]) -> FastAPI:
    """Stands for the ledger: records every POST and answers 201 with a count."""
    app = FastAPI()

    @app.post("/{path:path}", status_code=201)
    async def receive(path: str, request: Request) -> dict:
        received.append(Received(str(request.url), httpx.Headers(request.headers.raw), await request.body()))
        return {"received": len(received)}

    return app


class KeyedHttpClient(TwilioHttpClient):
    """Adds the Idempotency-Key header the ledger's adapter sends, which the SDK has no parameter for."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def request(self, method, url, params=None, data=None, headers=None, *args, **kwargs):
        return super().request(
            method, url, params, data, {**(headers or {}), "Idempotency-Key": self.key}, *args, **kwargs
        )


def twilio_client(mock: Served, key: str) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=KeyedHttpClient(key))
    client.api.base_url = mock.url  # the SDK builds every Messages API URL from its Api domain's base URL
    return client


def requests_of(http: httpx.Client) -> list[dict]:
    response = http.get("/_requests")
    assert response.status_code == 200, response.text
    return response.json()


def send_sms(http: httpx.Client, key: str | None, to: str = "+18045550101", **kwargs) -> httpx.Response:
    payload = {"from": "+18045550100", "to": to, "type": "sms", "body": "hi", "attachments": None}
    headers = {"Idempotency-Key": key} if key else {}
    return http.post("/sms", json=payload, headers=headers, **kwargs)
