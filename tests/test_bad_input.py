"""Bad input gets the spec's error body and a 4xx, and appends nothing (guarantee 8)."""

import base64

import orjson
import pytest

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
