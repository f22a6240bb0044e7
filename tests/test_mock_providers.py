"""`ledger mock-providers`: the provider APIs through the official SDKs, idempotency, faults, callbacks,
inbound webhooks and the command line, over real HTTP. No database: these tests use no db fixture."""

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from python_http_client.exceptions import HTTPError as SendgridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from slack_sdk.webhook import WebhookClient
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from api import cli
from api.embedded import free_port
from api.supervisor import Child, CrashLoop
from mock_providers.app import create_app
from tests.conftest import Served
from tests.support import poll

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


@pytest.fixture
def mock() -> Iterator[Served]:
    with Served(create_app()) as served:
        yield served


@pytest.fixture
def http(mock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[tuple[Served, list[Received]]]:
    received: list[Received] = []
    with Served(receiver_app(received)) as served:
        yield served, received


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


# The providers' success shapes, through their official SDKs


def test_twilio_sdk_gets_a_message_resource(mock, http):
    client = twilio_client(mock, "msg-twilio-1")
    message = client.messages.create(to="+18045550101", from_="+18045550100", body="Hello", media_url=["https://m/1"])

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.account_sid, message.to, message.from_, message.body) == (
        ACCOUNT_SID,
        "+18045550101",
        "+18045550100",
        "Hello",
    )
    assert (message.status, message.direction, message.api_version) == ("queued", "outbound-api", "2010-04-01")
    assert message.num_media == "1" and message.num_segments == "1" and message.error_code is None
    assert isinstance(message.date_created, datetime)
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    [entry] = requests_of(http)
    assert entry | {"received_at": None} == {
        "provider": "twilio",
        "path": MESSAGES_PATH,
        "idempotency_key": "msg-twilio-1",
        "to": "+18045550101",
        "body": "Hello",
        "provider_message_id": message.sid,
        "accepted": True,
        "status": 201,
        "fault": None,
        "received_at": None,
    }


def test_twilio_refuses_a_call_without_basic_auth(http):
    response = http.post(MESSAGES_PATH, data={"To": "+18045550101", "From": "+18045550100", "Body": "x"})
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert [(entry["status"], entry["accepted"]) for entry in requests_of(http)] == [(401, False)]


def test_sendgrid_sdk_gets_the_message_id_header(mock, http):
    sendgrid = SendGridAPIClient("SG.test-key", host=mock.url)
    mail = Mail("ledger@example.com", "ada@example.com", "Hello", plain_text_content="Hi Ada")
    response = sendgrid.client.mail.send.post(request_body=mail.get(), request_headers={"Idempotency-Key": "msg-sg-1"})

    assert response.status_code == 202 and response.body == b""
    message_id = response.headers["X-Message-Id"]
    [entry] = requests_of(http)
    assert (entry["provider"], entry["path"], entry["to"], entry["body"]) == (
        "sendgrid",
        "/v3/mail/send",
        "ada@example.com",
        "Hi Ada",
    )
    assert (entry["idempotency_key"], entry["provider_message_id"], entry["accepted"]) == ("msg-sg-1", message_id, True)

    assert http.put("/_faults", json={"next": ["500"]}).status_code == 200
    with pytest.raises(SendgridHTTPError) as failed:  # a new client: the first keeps the Idempotency-Key it was given
        SendGridAPIClient("SG.test-key", host=mock.url).send(mail)
    assert failed.value.status_code == 500 and orjson.loads(failed.value.body)["errors"]
    unauthorized = http.post("/v3/mail/send", json=mail.get())
    assert unauthorized.status_code == 401 and unauthorized.json()["errors"]


def test_slack_sdk_webhook_gets_ok(mock, http):
    response = WebhookClient(f"{mock.url}/services/T000/B000/XXXX").send(text="deploy finished")

    assert (response.status_code, response.body) == (200, "ok")
    [entry] = requests_of(http)
    assert (entry["provider"], entry["path"], entry["body"], entry["to"]) == (
        "slack",
        "/services/T000/B000/XXXX",
        "deploy finished",
        None,
    )
    assert entry["provider_message_id"] is None and entry["accepted"] is True  # Slack's webhooks give no id


@pytest.mark.parametrize(
    ("kind", "payload", "id_field", "prefix"),
    [
        (
            "sms",
            {"from": "+18045550100", "to": "+18045550101", "type": "sms", "body": "hi", "attachments": None},
            "messaging_provider_id",
            "sms-",
        ),
        (
            "email",
            {"from": "a@example.com", "to": "b@example.com", "body": "hi", "attachments": []},
            "xillio_id",
            "xil-",
        ),
        ("whatsapp", {"from": "+18045550100", "to": "+18045550101", "text": "hi"}, "channel_message_id", "wa-"),
    ],
)
def test_json_providers_answer_their_id(http, kind, payload, id_field, prefix):
    payload |= {"timestamp": "2026-11-22T10:00:00Z", "status_callback": "http://127.0.0.1:1/status"}
    response = http.post(f"/{kind}", json=payload, headers={"Idempotency-Key": f"msg-{kind}"})

    assert response.status_code == 200, response.text
    assert list(response.json()) == [id_field]
    provider_id = response.json()[id_field]
    assert provider_id.startswith(prefix)
    [entry] = requests_of(http)
    assert (entry["provider"], entry["path"], entry["to"], entry["body"]) == (kind, f"/{kind}", payload["to"], "hi")
    assert (entry["provider_message_id"], entry["accepted"], entry["status"]) == (provider_id, True, 200)


# Idempotency and faults


def test_a_repeated_key_gets_the_first_answer_without_a_second_delivery(mock, http):
    first = send_sms(http, "msg-1").json()
    again = send_sms(http, "msg-1").json()
    other = send_sms(http, "msg-2").json()
    sdk_first = twilio_client(mock, "msg-3").messages.create(to="+18045550101", from_="+18045550100", body="x")
    sdk_again = twilio_client(mock, "msg-3").messages.create(to="+18045550101", from_="+18045550100", body="x")

    assert again == first and other != first
    assert sdk_again.sid == sdk_first.sid
    entries = requests_of(http)
    assert [(entry["idempotency_key"], entry["accepted"]) for entry in entries] == [
        ("msg-1", True),
        ("msg-1", False),
        ("msg-2", True),
        ("msg-3", True),
        ("msg-3", False),
    ]
    assert entries[1]["provider_message_id"] == first["messaging_provider_id"]

    assert http.delete("/_requests").status_code == 200
    assert requests_of(http) == []
    assert send_sms(http, "msg-1").json() == first  # the provider still has the message


def test_next_faults_fail_the_next_calls_in_order(mock, http):
    faults = {"next": ["500", "429", "400"], "retry_after": 2, "delay_seconds": 3}
    assert http.put("/_faults", json=faults).status_code == 200

    server_error, rate_limited, rejected = (send_sms(http, "msg-1") for _ in range(3))
    delivered = send_sms(http, "msg-1")

    assert server_error.status_code == 500
    assert rate_limited.status_code == 429 and rate_limited.headers["Retry-After"] == "2"
    assert rejected.status_code == 400 and rejected.json() == {"error": "invalid destination"}
    assert delivered.status_code == 200  # a failed call accepted nothing: the same key is new again
    entries = requests_of(http)
    assert [(entry["fault"], entry["status"], entry["accepted"]) for entry in entries] == [
        ("500", 500, False),
        ("429", 429, False),
        ("400", 400, False),
        (None, 200, True),
    ]
    assert http.get("/_faults").json()["next"] == []


def test_twilio_faults_reach_the_sdk_as_twilio_errors(mock, http):
    assert http.put("/_faults", json={"next": ["429", "400"], "retry_after": 3}).status_code == 200
    client = twilio_client(mock, "msg-1")

    with pytest.raises(TwilioRestException) as rate_limited:
        client.messages.create(to="+18045550101", from_="+18045550100", body="x")
    with pytest.raises(TwilioRestException) as rejected:
        client.messages.create(to="+18045550101", from_="+18045550100", body="x")

    assert (rate_limited.value.status, rate_limited.value.code) == (429, 20429)
    assert (rejected.value.status, rejected.value.code) == (400, 21211)
    raw = http.post(MESSAGES_PATH, data={"To": "+1", "From": "+2", "Body": "x"}, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert raw.status_code == 201  # the `next` faults are used up
    assert http.delete("/_faults").status_code == 200


def test_a_timeout_accepts_the_message_and_answers_late(http):
    faults = {"next": ["timeout"], "delay_seconds": 1.5}
    assert http.put("/_faults", json=faults).status_code == 200

    with pytest.raises(httpx.ReadTimeout):
        send_sms(http, "msg-late", timeout=0.3)
    [late] = requests_of(http)
    assert (late["fault"], late["accepted"], late["status"]) == ("timeout", True, None)

    retry = send_sms(http, "msg-late")
    assert retry.status_code == 200
    assert retry.json()["messaging_provider_id"] == late["provider_message_id"]
    late, replay = requests_of(http)
    assert (replay["accepted"], replay["fault"], replay["status"]) == (False, None, 200)
    answered = poll(lambda: requests_of(http)[0]["status"] == 200, what="the late answer")
    assert answered


def test_random_faults_with_a_seed_are_reproducible(http):
    faults = {"rate": 0.5, "kinds": ["429", "500"], "seed": 7}

    def statuses() -> list[int]:
        assert http.put("/_faults", json=faults).status_code == 200
        return [send_sms(http, None).status_code for _ in range(20)]

    first, second = statuses(), statuses()
    assert first == second
    assert {200, 429, 500} <= set(first)
    assert http.put("/_faults", json=faults | {"seed": 8}).status_code == 200
    assert [send_sms(http, None).status_code for _ in range(20)] != first


@pytest.mark.parametrize(
    "body",
    [{"rate": 2}, {"next": ["418"]}, {"kinds": []}, {"nxet": ["500"]}, {"retry_after": -1}],
)
def test_bad_fault_bodies_are_refused(http, body):
    assert http.put("/_faults", json=body).status_code == 422


# Status callbacks and inbound webhooks


def test_twilio_status_callbacks_arrive_in_order_and_signed(mock, http, receiver):
    served, received = receiver
    config = {"statuses": ["sent", "delivered", "failed"], "shuffle": False, "delay_seconds": 0.05}
    assert http.put("/_callbacks", json=config).status_code == 200
    status_url = f"{served.url}/v1/status/channel-1"

    message = twilio_client(mock, "msg-1").messages.create(
        to="+18045550101", from_="+18045550100", body="x", status_callback=status_url
    )

    poll(lambda: len(received) == 3, what="three status callbacks")
    forms = [callback.form() for callback in received]
    assert [form["MessageStatus"] for form in forms] == ["sent", "delivered", "failed"]
    validator = RequestValidator(AUTH_TOKEN)
    for callback, form in zip(received, forms, strict=True):
        assert callback.url == status_url
        assert validator.validate(status_url, form, callback.headers["X-Twilio-Signature"])
        assert not RequestValidator("another-token").validate(status_url, form, callback.headers["X-Twilio-Signature"])
        assert (form["MessageSid"], form["SmsSid"], form["AccountSid"]) == (message.sid, message.sid, ACCOUNT_SID)
        assert (form["From"], form["To"], form["ApiVersion"]) == ("+18045550100", "+18045550101", "2010-04-01")
        assert form["SmsStatus"] == form["MessageStatus"]
    assert [form.get("ErrorCode") for form in forms] == [None, None, "30003"]
    posted = poll(lambda: len(logged := http.get("/_callbacks").json()) == 3 and logged, what="the callback log")
    assert [(entry["status"], entry["answer_status"]) for entry in posted] == [
        ("sent", 201),
        ("delivered", 201),
        ("failed", 201),
    ]
    assert http.delete("/_callbacks").status_code == 200
    assert http.get("/_callbacks").json() == []


def test_inbound_sms_webhook_is_signed_like_the_provider(http, receiver):
    served, received = receiver
    payload = {"from": "+18045550101", "to": "+18045550100", "type": "sms", "body": "hi", "messaging_provider_id": "m1"}
    url = f"{served.url}/v1/webhooks/channel-1"

    answer = http.post("/_inbound", json={"webhook_url": url, "secret": "s3cret", "kind": "sms", "payload": payload})

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": 201, "body": {"received": 1}}
    [webhook] = received
    expected = "sha256=" + hmac.new(b"s3cret", webhook.body, hashlib.sha256).hexdigest()
    assert webhook.headers["X-Ledger-Signature"] == expected
    assert webhook.headers["Content-Type"] == "application/json"
    assert orjson.loads(webhook.body) == payload


def test_inbound_twilio_webhook_is_signed_like_twilio(http, receiver):
    served, received = receiver
    payload = {"MessageSid": "SM1", "From": "+18045550101", "To": "+18045550100", "Body": "hi", "NumMedia": 0}
    url = f"{served.url}/v1/webhooks/channel-2"

    answer = http.post(
        "/_inbound", json={"webhook_url": url, "secret": AUTH_TOKEN, "kind": "twilio", "payload": payload}
    )

    assert answer.json()["status"] == 201
    [webhook] = received
    form = webhook.form()
    assert form == {"MessageSid": "SM1", "From": "+18045550101", "To": "+18045550100", "Body": "hi", "NumMedia": "0"}
    assert webhook.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert RequestValidator(AUTH_TOKEN).validate(url, form, webhook.headers["X-Twilio-Signature"])


def test_inbound_refuses_an_unknown_kind_and_reports_an_unreachable_ledger(http):
    inbound = {"webhook_url": "http://127.0.0.1:9/x", "secret": "s", "kind": "pigeon", "payload": {}}
    assert http.post("/_inbound", json=inbound).status_code == 422
    unreachable = inbound | {"kind": "sms", "webhook_url": f"http://127.0.0.1:{free_port()}/x"}
    assert http.post("/_inbound", json=unreachable).status_code == 502


# The command line


def test_ledger_mock_providers_command_serves_the_mock():
    port = free_port()
    env = dict(os.environ, LEDGER_MOCK_PROVIDERS_PORT=str(port))
    command = [sys.executable, "-m", "api.cli", "mock-providers", "--host", "127.0.0.1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def answers() -> httpx.Response | None:
            assert process.poll() is None, f"ledger mock-providers exited ({process.returncode})"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_requests", timeout=1)
            except httpx.TransportError:
                return None

        response = poll(answers, timeout=30, what="ledger mock-providers answering")
        assert response.status_code == 200 and response.json() == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_ledger_up_with_mock_providers_adds_the_child_and_the_unset_provider_urls(monkeypatch):
    monkeypatch.setenv("LEDGER_MOCK_PROVIDERS_PORT", "8123")
    args = cli.parser().parse_args(["up", "--mock-providers", "--host", "127.0.0.2"])
    env = {"LEDGER_PROVIDER_URL_SLACK": "https://hooks.slack.com", "LEDGER_PROVIDER_URL_SMS": ""}

    url = cli.point_providers_at_mock(args, env)
    children = cli.children_of_up(args, env)

    assert url == "http://127.0.0.2:8123"
    assert env == {
        "LEDGER_PROVIDER_URL_TWILIO": url,
        "LEDGER_PROVIDER_URL_SENDGRID": url,
        "LEDGER_PROVIDER_URL_SLACK": "https://hooks.slack.com",
        "LEDGER_PROVIDER_URL_SMS": url,
        "LEDGER_PROVIDER_URL_EMAIL": url,
        "LEDGER_PROVIDER_URL_WHATSAPP": url,
    }
    assert [child.name for child in children] == ["api", "worker 1", "dispatcher", "mock providers"]
    assert children[-1].command[-5:] == ["mock-providers", "--host", "127.0.0.2", "--port", "8123"]
    plain = cli.parser().parse_args(["up"])
    assert cli.point_providers_at_mock(plain, {}) is None
    assert [child.name for child in cli.children_of_up(plain, {})] == ["api", "worker 1", "dispatcher"]


def test_wait_until_answering_returns_on_answer_stop_or_a_dying_child(mock):
    stopping = threading.Event()
    nobody = f"http://127.0.0.1:{free_port()}/"
    supervisor = argparse.Namespace(children=[])
    assert cli.wait_until_answering(f"{mock.url}/_faults", supervisor, stopping) is True

    threading.Timer(0.3, stopping.set).start()
    assert cli.wait_until_answering(nobody, supervisor, stopping) is False

    dying = Child("api", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    dying.start()
    dying.process.wait(timeout=10)
    with pytest.raises(CrashLoop, match="api exited \\(exit code 3\\) while starting"):
        cli.wait_until_answering(nobody, argparse.Namespace(children=[dying]), threading.Event())
