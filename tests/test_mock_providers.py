"""`ledger mock-providers`: the provider APIs through the official SDKs, idempotency, faults, callbacks,
inbound webhooks and the command line, over real HTTP. No database: these tests use no db fixture."""

from datetime import datetime

import httpx
import orjson
import pytest
from python_http_client.exceptions import HTTPError as SendgridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from slack_sdk.webhook import WebhookClient
from twilio.base.exceptions import TwilioRestException

from tests.mock_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MESSAGES_PATH,
    requests_of,
    send_sms,
    twilio_client,
)
from tests.support import poll

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
