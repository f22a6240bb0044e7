"""The mock providers' Twilio status callbacks, signed inbound webhooks, and its command line."""

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import threading

import httpx
import orjson
import pytest
from twilio.request_validator import RequestValidator

from api import cli, up
from api.embedded import free_port
from api.supervisor import Child, CrashLoop
from tests.mock_harness import ACCOUNT_SID, AUTH_TOKEN, twilio_client
from tests.support import poll


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

    url = up.point_providers_at_mock(args, env)
    children = up.children_of_up(args, env)

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
    assert up.point_providers_at_mock(plain, {}) is None
    assert [child.name for child in up.children_of_up(plain, {})] == ["api", "worker 1", "dispatcher"]


def test_wait_until_answering_returns_on_answer_stop_or_a_dying_child(mock):
    stopping = threading.Event()
    nobody = f"http://127.0.0.1:{free_port()}/"
    supervisor = argparse.Namespace(children=[])
    assert up.wait_until_answering(f"{mock.url}/_faults", supervisor, stopping) is True

    threading.Timer(0.3, stopping.set).start()
    assert up.wait_until_answering(nobody, supervisor, stopping) is False

    dying = Child("api", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    dying.start()
    dying.process.wait(timeout=10)
    with pytest.raises(CrashLoop, match="api exited \\(exit code 3\\) while starting"):
        up.wait_until_answering(nobody, argparse.Namespace(children=[dying]), threading.Event())
