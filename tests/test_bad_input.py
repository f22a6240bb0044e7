"""Bad input gets the spec's error body and a 4xx, and appends nothing (guarantee 8)."""

import base64

import orjson
import pytest

from api.errors import ledger_error
from ledger.errors import Conflict, Unavailable
from tests.conftest import OPERATOR_TOKEN
from tests.support import (
    count_events,
    create_channel,
    create_company,
    post_signed,
    read_conversation,
    sign,
    sms_payload,
)


@pytest.fixture
def sms(client):
    tenant = create_company(client)
    return tenant, create_channel(client, tenant)


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message", "details"}
    assert body["error_code"] == code
    return body


def post_raw(client, channel, raw: bytes, signature: str | None, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Ledger-Signature"] = signature
    return client.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers)


def test_bad_webhooks_get_errors_and_append_nothing(client, db_url, sms):
    _, channel = sms
    events_before = count_events(db_url)
    good = orjson.dumps(sms_payload(channel))

    assert_error(post_raw(client, channel, good, None), 401, "invalid_signature")
    assert_error(post_raw(client, channel, good, sign("wrong-secret", good)), 401, "invalid_signature")
    assert_error(post_raw(client, channel, good, sign(channel.secret, good + b" ")), 401, "invalid_signature")

    malformed = b'{"from": "+18045551234", "to": '
    assert_error(post_raw(client, channel, malformed, sign(channel.secret, malformed)), 400, "invalid_json")

    missing = sms_payload(channel)
    del missing["messaging_provider_id"]
    body = assert_error(post_signed(client, channel, missing), 422, "validation_error")
    assert body["details"][0]["field"] == "messaging_provider_id"
    assert set(body["details"][0]) == {"field", "issue", "message"}

    body = assert_error(post_signed(client, channel, sms_payload(channel, to="+18045550999")), 422, "validation_error")
    assert body["details"][0]["field"] == "to"
    assert_error(post_signed(client, channel, sms_payload(channel, sender="not a number")), 422, "validation_error")
    assert_error(post_signed(client, channel, [1, 2]), 422, "validation_error")

    as_form = b"from=%2B18045551234"
    assert_error(
        post_raw(client, channel, as_form, sign(channel.secret, as_form), "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )

    oversize = orjson.dumps(sms_payload(channel, body="x" * (1024 * 1024)))
    assert_error(post_raw(client, channel, oversize, sign(channel.secret, oversize)), 413, "payload_too_large")

    def chunks():
        for _ in range(20):
            yield b"y" * 65536

    chunked = client.post(
        f"/v1/webhooks/{channel.id}",
        content=chunks(),
        headers={"Content-Type": "application/json", "X-Ledger-Signature": "sha256=00"},
    )
    assert_error(chunked, 413, "payload_too_large")

    assert count_events(db_url) == events_before


def test_unknown_channel_and_route_are_404(client, sms):
    _, channel = sms
    payload = orjson.dumps(sms_payload(channel))
    response = client.post(
        "/v1/webhooks/00000000-0000-0000-0000-000000000000",
        content=payload,
        headers={"Content-Type": "application/json", "X-Ledger-Signature": sign("x", payload)},
    )
    assert_error(response, 404, "not_found")
    assert_error(client.post("/v1/webhooks/not-a-uuid", content=payload), 404, "not_found")
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_bad_api_requests(client, db_url, sms):
    tenant, _ = sms
    events_before = count_events(db_url)
    assert_error(client.get("/v1/users"), 401, "unauthorized")
    assert_error(client.get("/v1/users", headers={"Authorization": "Bearer lk_nope"}), 401, "unauthorized")
    assert_error(client.post("/v1/companies", json={"name": "X"}, headers=tenant.auth), 401, "unauthorized")
    assert_error(
        client.post("/v1/users", content=b"{", headers={**tenant.auth, "Content-Type": "application/json"}),
        400,
        "invalid_json",
    )
    body = assert_error(
        client.post("/v1/users", json={"name": "Ann", "role": "root"}, headers=tenant.auth), 422, "validation_error"
    )
    assert body["details"][0]["field"] == "role"
    assert_error(
        client.post("/v1/users", content=b"name=Ann", headers={**tenant.auth, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    body = assert_error(
        client.post("/v1/channels", json={"kind": "pigeon", "address": "x"}, headers=tenant.auth),
        422,
        "validation_error",
    )
    assert body["details"][0]["field"] == "kind"
    assert_error(
        client.post("/v1/channels", json={"kind": "sms", "address": "12"}, headers=tenant.auth), 422, "validation_error"
    )
    assert_error(
        client.get("/v1/conversations", params={"cursor": "garbage"}, headers=tenant.auth), 422, "validation_error"
    )
    assert_error(client.get("/v1/conversations", params={"limit": 0}, headers=tenant.auth), 422, "validation_error")
    assert count_events(db_url) == events_before


def test_nul_characters_are_refused_everywhere(client, db_url, sms):
    tenant, channel = sms
    events_before = count_events(db_url)
    for field, value in [("body", "a\x00b"), ("messaging_provider_id", "id\x00"), ("attachments", ["u\x00"])]:
        body = assert_error(
            post_signed(client, channel, sms_payload(channel, **{field: value})), 422, "validation_error"
        )
        assert body["details"][0]["issue"] == "nul_character"
        assert body["details"][0]["field"].startswith(field)
    assert_error(
        client.post("/v1/channels", json={"kind": "email", "address": "a\x00b@example.com"}, headers=tenant.auth),
        422,
        "validation_error",
    )
    assert_error(
        client.post("/v1/users", json={"name": "A\x00", "role": "agent"}, headers=tenant.auth), 422, "validation_error"
    )
    assert count_events(db_url) == events_before


def test_query_parameters_are_validated(client, sms):
    tenant, _ = sms
    forged = base64.urlsafe_b64encode(orjson.dumps(["2024-01-01T00:00:00", "not-a-uuid"])).decode()
    for params in ({"cursor": forged}, {"status": "\x00"}, {"status": "pending"}, {"owner_id": "nope"}):
        assert_error(client.get("/v1/conversations", params=params, headers=tenant.auth), 422, "validation_error")


def test_odd_but_valid_input_is_accepted(client, sms, work):
    tenant, channel = sms
    far_zone = post_signed(client, channel, sms_payload(channel, timestamp="2024-01-01T00:00:00+20:00"))
    assert far_zone.status_code == 201, far_zone.text
    email = create_channel(client, tenant, kind="email", address="help@acme.example")
    payload = {
        "from": "a@b.example",
        "to": "help@acme.example",
        "xillio_id": "x-9",
        "body": "<p>broken</p><![foo[bar",
        "attachments": [],
        "timestamp": "2026-11-22T10:00:00Z",
    }
    broken_html = post_signed(client, email, payload)
    assert broken_html.status_code == 201, broken_html.text
    work()
    position = broken_html.json()["position"]
    timeline = read_conversation(client, tenant, far_zone.json()["conversation_id"], position)
    assert timeline["messages"][0]["sent_at"] == "2023-12-31T04:00:00Z"
    summary = read_conversation(client, tenant, broken_html.json()["conversation_id"])
    assert summary["last_message_preview"] == "broken"
    assert summary["messages"][0]["body"] == payload["body"]


def test_a_method_a_path_does_not_have_is_405_with_every_allowed_method(client, sms):
    tenant, _ = sms
    response = client.delete("/v1/users", headers=tenant.auth)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert_error(client.put("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/v1/companies", "/v1/users", "/v1/channels"])
@pytest.mark.parametrize("authorization", [None, "Bearer lk_nope", "Basic x"])
def test_credentials_are_checked_before_the_body_is_read(client, path, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for body in (b"{", b"", b"[1, 2]", b'{"name": 3}'):
        assert_error(client.post(path, content=body, headers=headers), 401, "unauthorized")
    assert_error(client.post(path, content=b"{", headers={"Content-Type": "text/plain"}), 401, "unauthorized")


def test_a_bad_body_from_a_caller_with_credentials_gets_its_own_error(client, sms):
    tenant, _ = sms
    json = {**tenant.auth, "Content-Type": "application/json"}
    assert_error(client.post("/v1/channels", content=b"", headers=json), 400, "invalid_json")
    assert_error(client.post("/v1/channels", content=b"[1, 2]", headers=json), 422, "validation_error")
    body = assert_error(client.post("/v1/users", content=b'{"role": "agent"}', headers=json), 422, "validation_error")
    assert body["details"] == [{"field": "name", "issue": "missing", "message": "Field required"}]
    assert_error(client.post("/v1/users", content=b"{}", headers=tenant.auth), 415, "unsupported_media_type")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"}
    assert_error(client.post("/v1/companies", content=b"{", headers=operator), 400, "invalid_json")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(Conflict("taken"), 409, "conflict"), (Unavailable("slow"), 503, "unavailable")],
)
def test_every_ledger_error_has_its_answer(error, status, code):
    response = ledger_error(None, error)
    assert response.status_code == status
    assert orjson.loads(response.body) == {"error_code": code, "message": error.message, "details": None}
    assert ("retry-after" in response.headers) == (status == 503)


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_timestamp_out_of_range_once_in_utc_is_refused_on_its_field(client, db_url, sms, timestamp):
    _, channel = sms
    events_before = count_events(db_url)
    response = post_signed(client, channel, sms_payload(channel, timestamp=timestamp))
    body = assert_error(response, 422, "validation_error")
    assert [problem["field"] for problem in body["details"]] == ["timestamp"]
    assert count_events(db_url) == events_before


def test_json_nested_as_deep_as_the_parser_reads_is_refused(client, db_url, sms):
    _, channel = sms
    events_before = count_events(db_url)
    nested = b'{"from": ' + b"[" * 1023 + b"]" * 1023 + b"}"  # 1,024 levels: the deepest orjson reads
    assert_error(post_signed(client, channel, nested), 422, "validation_error")
    assert count_events(db_url) == events_before


@pytest.mark.parametrize("hostile_html", ["</" * 125_000, "<ul><li>" * 32_768])
def test_a_hostile_html_email_body_is_previewed_in_bounded_time(client, hostile_html):
    tenant = create_company(client)
    email = create_channel(client, tenant, kind="email", address="support@example.com")
    payload = {
        "from": "a@b.example",
        "to": "support@example.com",
        "xillio_id": "x-hostile",
        "body": hostile_html,  # 250 KB; html.parser took 6.5 s of CPU over the "</" one
        "attachments": [],
        "timestamp": "2026-11-22T10:00:00Z",
    }
    response = post_signed(client, email, payload)
    assert response.status_code == 201, response.text
    assert response.elapsed.total_seconds() < 3
