"""The outbound provider adapters over real HTTP: against the mock providers (spec section 7) for each kind's
success, 429, 500, 400, timeout and replay, and a closed port; against a scripted stub for answers the mock
never gives (a 2xx without a message id, an error echoing a credential, an HTTP-date Retry-After).
No database, no Redis."""

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest

from api.embedded import free_port
from ledger.providers import Delivery, ProviderAnswer, providers
from ledger.providers._http import NO_MESSAGE_ID, classify, parse_retry_after, scrub
from ledger.providers.slack import webhook_url
from ledger.providers.sms import message_type
from tests.support import MockProviders

KINDS = ["twilio", "sendgrid", "slack", "sms", "email", "whatsapp"]
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-7f3a9c2e5b1d4f60"
SENDGRID_KEY = "SG.sendgrid-key.9d8c7b6a5f4e3d2c1b0a"
SLACK_SECRET = "slack-path-secret-4e5f6a7b8c9d"
SLACK_WEBHOOK = f"https://hooks.slack.com/services/T0001/B0001/{SLACK_SECRET}"
JSON_KEY = "json-provider-key-1a2b3c4d5e6f"
CREDENTIALS = [ACCOUNT_SID, AUTH_TOKEN, SENDGRID_KEY, SLACK_SECRET, SLACK_WEBHOOK, JSON_KEY]
# What the mock's log must not show. The account sid is in Twilio's URL path and the Slack secret in the
# webhook's path, which the log keeps by design; the keys and tokens travel in headers only.
SECRETS = [AUTH_TOKEN, SENDGRID_KEY, SLACK_WEBHOOK, JSON_KEY]
STATUS_URL = "https://ledger.example.com/v1/status/ch_1"
ATTACHMENT = "https://cdn.example.com/a.png"


def delivery_for(kind: str, message_id: str | None = None) -> Delivery:
    phone = dict(from_address="+18045550100", to="+18045551234")
    email = dict(from_address="support@example.com", to="ann@example.com")
    shapes = {
        "twilio": dict(**phone, credentials={"account_sid": ACCOUNT_SID}, secret=AUTH_TOKEN, attachments=[ATTACHMENT]),
        "sendgrid": dict(**email, credentials={"api_key": SENDGRID_KEY}),
        "slack": dict(from_address="#support", to="#support", credentials={"webhook_url": SLACK_WEBHOOK}),
        "sms": dict(**phone, credentials={"api_key": JSON_KEY}, attachments=[ATTACHMENT]),
        "email": dict(**email, credentials={"api_key": JSON_KEY}),
        "whatsapp": dict(**phone, credentials={"api_key": JSON_KEY}),
    }
    shape = {"attachments": [], "secret": None, **shapes[kind]}
    return Delivery(
        message_id=message_id or f"msg_{uuid.uuid4().hex}",
        kind=kind,
        body=f"Hello from the {kind} test",
        message_type="text",
        queued_at="2026-11-22T10:00:00Z",
        status_url=STATUS_URL,
        **shape,
    )


def send(kind: str, delivery: Delivery, base_url: str | None, timeout: float = 5.0) -> ProviderAnswer:
    answer = providers()[kind].send(delivery, base_url, timeout)
    assert not any(secret in (answer.reason or "") for secret in CREDENTIALS), answer.reason
    return answer


@pytest.fixture
def mock(mock_providers) -> MockProviders:
    return mock_providers


def expected_to(delivery: Delivery) -> str | None:
    return None if delivery.kind == "slack" else delivery.to


def only_entry(mock: MockProviders) -> dict:
    entries = mock.requests()
    assert len(entries) == 1, entries
    return entries[0]


@pytest.mark.parametrize("kind", KINDS)
def test_success_returns_the_provider_id_and_the_mock_saw_the_message(mock, kind):
    delivery = delivery_for(kind)
    answer = send(kind, delivery, mock.url)

    assert answer.outcome == "sent", answer
    assert 200 <= answer.http_status < 300
    entry = only_entry(mock)
    assert entry["provider"] == kind
    assert entry["idempotency_key"] == delivery.message_id
    assert entry["accepted"] is True
    assert delivery.body in entry["body"]
    if kind == "slack":
        assert answer.provider_message_id is None
    else:
        assert answer.provider_message_id
        assert entry["provider_message_id"] == answer.provider_message_id
        assert entry["to"] == delivery.to
    log = json.dumps(mock.requests())
    assert not [secret for secret in SECRETS if secret in log]


@pytest.mark.parametrize("kind", KINDS)
def test_429_is_a_retry_after_the_providers_delay(mock, kind):
    mock.faults("429", retry_after=7)
    answer = send(kind, delivery_for(kind), mock.url)

    assert (answer.outcome, answer.http_status, answer.retry_after) == ("retry", 429, 7.0), answer
    assert "429" in answer.reason
    assert only_entry(mock)["accepted"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_500_is_a_retry_and_the_next_attempt_is_sent(mock, kind):
    delivery = delivery_for(kind)
    mock.faults("500")
    failed = send(kind, delivery, mock.url)
    assert (failed.outcome, failed.http_status, failed.retry_after) == ("retry", 500, None), failed
    assert "500" in failed.reason

    again = send(kind, delivery, mock.url)
    assert again.outcome == "sent", again
    assert [entry["accepted"] for entry in mock.requests()] == [False, True]


@pytest.mark.parametrize("kind", KINDS)
def test_400_is_rejected_with_the_providers_reason(mock, kind):
    mock.faults("400")
    answer = send(kind, delivery_for(kind), mock.url)

    assert (answer.outcome, answer.http_status) == ("rejected", 400), answer
    assert "400" in answer.reason
    assert "invalid destination" in answer.reason.lower()  # Twilio's error message is capitalized
    assert len(answer.reason) <= 220


@pytest.mark.parametrize("kind", KINDS)
def test_a_timeout_is_a_retry_and_the_retry_gets_the_first_answer(mock, kind):
    delivery = delivery_for(kind)
    mock.faults("timeout", delay_seconds=2)
    started = time.monotonic()
    timed_out = send(kind, delivery, mock.url, timeout=0.5)
    assert time.monotonic() - started < 1.8, "the adapter waited for the late answer"
    assert (timed_out.outcome, timed_out.http_status) == ("retry", None), timed_out
    assert timed_out.reason == "no answer within 0.5 s"
    first = only_entry(mock)
    assert first["accepted"] is True

    replayed = send(kind, delivery, mock.url)
    assert replayed.outcome == "sent", replayed
    assert replayed.provider_message_id == first["provider_message_id"]
    entries = mock.requests()
    assert [entry["accepted"] for entry in entries] == [True, False]
    assert {entry["idempotency_key"] for entry in entries} == {delivery.message_id}


@pytest.mark.parametrize("kind", KINDS)
def test_a_closed_port_is_a_retry_without_a_status(kind):
    answer = send(kind, delivery_for(kind), f"http://127.0.0.1:{free_port()}", timeout=2)

    assert (answer.outcome, answer.http_status) == ("retry", None), answer
    assert "refused" in answer.reason


@pytest.mark.parametrize("kind", ["sms", "email", "whatsapp"])
def test_the_json_providers_have_no_public_service(kind):
    answer = send(kind, delivery_for(kind), None)
    assert answer == ProviderAnswer("rejected", None, reason=f"LEDGER_PROVIDER_URL_{kind.upper()} is not set")


@pytest.mark.parametrize("kind", KINDS)
def test_a_base_url_that_is_no_http_url_is_rejected(kind):
    answer = send(kind, delivery_for(kind), "ftp://provider.example.com")
    assert (answer.outcome, answer.http_status) == ("rejected", None)
    assert f"LEDGER_PROVIDER_URL_{kind.upper()}" in answer.reason


@pytest.mark.parametrize(
    ("kind", "missing"),
    [("twilio", "credentials"), ("twilio", "secret"), ("sendgrid", "credentials"), ("slack", "credentials")],
)
def test_a_channel_without_its_credentials_is_rejected_without_a_call(kind, missing):
    delivery = delivery_for(kind)
    delivery = Delivery(**{**delivery.__dict__, missing: {} if missing == "credentials" else None})
    answer = send(kind, delivery, f"http://127.0.0.1:{free_port()}")
    assert (answer.outcome, answer.http_status) == ("rejected", None), answer


# --- A scripted stub: the answers the mock never gives, and what exactly the adapters send.


class Stub:
    """A plain HTTP server answering each request with the next scripted (status, headers, body),
    keeping what it received."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.received: list[dict] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stub.received.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": self.rfile.read(length)}
                )
                status, headers, body = stub.script.pop(0) if stub.script else (200, {}, b"{}")
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)


@pytest.fixture
def stub() -> Iterator[Stub]:
    served = Stub()
    served.thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("kind", ["twilio", "sendgrid", "sms", "email", "whatsapp"])
def test_a_2xx_without_a_message_id_is_rejected_not_resent(stub, kind):
    stub.script.append((202 if kind == "sendgrid" else 201, JSON, b'{"status": "queued"}'))
    answer = send(kind, delivery_for(kind), stub.url)
    assert answer == ProviderAnswer("rejected", 202 if kind == "sendgrid" else 201, reason=NO_MESSAGE_ID)


def test_a_2xx_that_is_no_json_is_rejected_not_resent(stub):
    stub.script.append((201, {"Content-Type": "text/html"}, b"<html>accepted</html>"))
    answer = send("twilio", delivery_for("twilio"), stub.url)
    assert answer == ProviderAnswer("rejected", 201, reason=NO_MESSAGE_ID)


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_echoing_a_credential_keeps_it_out_of_the_reason(stub, kind):
    delivery = delivery_for(kind)
    own = [value for value in (delivery.secret, *delivery.credentials.values()) if value]
    # The last credential straddles the reason's length limit: masked before shortening, no prefix of it is left.
    echoed = "bad request from " + " ".join(own) + " "
    echoed += "x" * (190 - len(echoed)) + own[-1]
    stub.script.append((403, JSON, json.dumps({"message": echoed}).encode()))
    answer = send(kind, delivery, stub.url)  # `send` asserts no credential is in the reason

    assert (answer.outcome, answer.http_status) == ("rejected", 403)
    assert answer.reason.startswith("HTTP 403: bad request from [redacted]")
    assert answer.reason.endswith("x[redacted]")
    assert len(answer.reason) <= 220


@pytest.mark.parametrize("kind", KINDS)
def test_an_http_date_retry_after_and_408(stub, kind):
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    stub.script += [(429, {"Retry-After": later, **JSON}, b"{}"), (408, JSON, b"{}"), (503, {}, b"")]
    answers = [send(kind, delivery_for(kind), stub.url) for _ in range(3)]
    assert [(answer.outcome, answer.http_status) for answer in answers] == [
        ("retry", 429),
        ("retry", 408),
        ("retry", 503),
    ]
    assert 100 < answers[0].retry_after <= 120


def test_what_twilio_is_sent(stub):
    delivery = delivery_for("twilio")
    stub.script.append((201, JSON, json.dumps({"sid": "SM123", "status": "queued"}).encode()))
    answer = send("twilio", delivery, stub.url + "/prefix/")

    assert answer == ProviderAnswer("sent", 201, provider_message_id="SM123")
    (request,) = stub.received
    assert request["path"] == f"/prefix/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["idempotency-key"] == delivery.message_id
    assert headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    form = parse_qs(request["body"].decode())
    assert form == {
        "To": [delivery.to],
        "From": [delivery.from_address],
        "Body": [delivery.body],
        "MediaUrl": [ATTACHMENT],
        "StatusCallback": [STATUS_URL],
    }


def test_what_sendgrid_is_sent(stub):
    delivery = delivery_for("sendgrid")
    stub.script.append((202, {"X-Message-Id": "sg-42"}, b""))
    answer = send("sendgrid", delivery, stub.url)

    assert answer == ProviderAnswer("sent", 202, provider_message_id="sg-42")
    (request,) = stub.received
    assert request["path"] == "/v3/mail/send"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert headers["idempotency-key"] == delivery.message_id
    body = json.loads(request["body"])
    assert body["personalizations"] == [{"to": [{"email": delivery.to}]}]
    assert body["from"] == {"email": delivery.from_address}
    assert body["subject"] == delivery.body
    assert body["content"] == [{"type": "text/plain", "value": delivery.body}]


def test_what_slack_is_sent(stub):
    delivery = delivery_for("slack")
    stub.script.append((200, {"Content-Type": "text/plain"}, b"ok"))
    answer = send("slack", delivery, stub.url)

    assert answer == ProviderAnswer("sent", 200)
    (request,) = stub.received
    assert request["path"] == f"/services/T0001/B0001/{SLACK_SECRET}"
    assert json.loads(request["body"]) == {"text": delivery.body}
    assert request["headers"]["Idempotency-Key"] == delivery.message_id


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "sms",
            {"type": "mms", "body": "Hello from the sms test", "attachments": [ATTACHMENT]},
        ),
        ("email", {"body": "Hello from the email test", "attachments": []}),
        ("whatsapp", {"text": "Hello from the whatsapp test"}),
    ],
)
def test_what_the_json_providers_are_sent(stub, kind, expected):
    delivery = delivery_for(kind)
    id_field = {"sms": "messaging_provider_id", "email": "xillio_id", "whatsapp": "channel_message_id"}[kind]
    stub.script.append((200, JSON, json.dumps({id_field: "p-1"}).encode()))
    answer = send(kind, delivery, stub.url + "/")

    assert answer == ProviderAnswer("sent", 200, provider_message_id="p-1")
    (request,) = stub.received
    assert request["path"] == f"/{kind}"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {JSON_KEY}"
    assert headers["idempotency-key"] == delivery.message_id
    assert json.loads(request["body"]) == {
        "from": delivery.from_address,
        "to": delivery.to,
        "timestamp": delivery.queued_at,
        "status_callback": STATUS_URL,
        **expected,
    }


# --- Pure helpers.


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Sun, 22 Nov 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now) == 0.0
    for unreadable in (None, "", "soon", "-1", "nan", "inf"):
        assert parse_retry_after(unreadable, now) is None


def test_classification_of_statuses():
    assert classify(201, {}, b"", "id-1") == ProviderAnswer("sent", 201, provider_message_id="id-1")
    assert classify(200, {}, b"ok", None, id_required=False) == ProviderAnswer("sent", 200)
    assert classify(429, {"retry-after": "2"}, b"", None).retry_after == 2.0
    assert classify(429, {}, b"", None) == ProviderAnswer("retry", 429, reason="HTTP 429", retry_after=None)
    assert classify(404, {}, b'{"errors": [{"message": "no such route"}]}', None) == ProviderAnswer(
        "rejected", 404, reason="HTTP 404: no such route"
    )
    assert classify(301, {}, b"", None).outcome == "rejected"
    assert classify(599, {}, b"", None).outcome == "retry"


def test_scrub_masks_every_credential():
    delivery = delivery_for("twilio")
    answer = scrub(ProviderAnswer("rejected", 401, reason=f"bad auth {ACCOUNT_SID}:{AUTH_TOKEN}"), delivery)
    assert answer.reason == "bad auth [redacted]:[redacted]"


def test_sms_type_and_slack_url():
    def sms(message_type_: str, attachments: list[str]) -> str:
        delivery = delivery_for("sms")
        return message_type(
            Delivery(**{**delivery.__dict__, "message_type": message_type_, "attachments": attachments})
        )

    assert sms("text", []) == "sms"
    assert sms("text", [ATTACHMENT]) == "mms"
    assert sms("sms", [ATTACHMENT]) == "sms"
    assert sms("mms", []) == "mms"
    assert webhook_url(SLACK_WEBHOOK, None) == SLACK_WEBHOOK
    assert webhook_url(SLACK_WEBHOOK + "?x=1", "http://127.0.0.1:8001/slack/") == (
        f"http://127.0.0.1:8001/slack/services/T0001/B0001/{SLACK_SECRET}?x=1"
    )


def test_every_kind_has_a_provider():
    assert sorted(providers()) == sorted(KINDS)
