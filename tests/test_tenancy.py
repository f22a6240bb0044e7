"""Tenant isolation (guarantee 7), roles, and credentials never stored in plain text."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import psycopg
import pytest

from ledger.credentials import hash_key
from tests.conftest import OPERATOR_TOKEN
from tests.support import count_events, create_channel, create_company, post_signed, sms_payload


@pytest.fixture
def two_tenants(client, work):
    tenants = []
    for name in ("Company A", "Company B"):
        tenant = create_company(client, name)
        channel = create_channel(client, tenant)
        written = post_signed(client, channel, sms_payload(channel)).json()
        tenants.append((tenant, channel, written))
    work()
    return tenants


def test_a_key_of_one_company_sees_nothing_of_another(client, two_tenants):
    (a, a_channel, a_written), (b, b_channel, b_written) = two_tenants
    position = max(a_written["position"], b_written["position"])

    listed = client.get("/v1/conversations", params={"min_position": position}, headers=a.auth).json()
    assert [item["id"] for item in listed["items"]] == [a_written["conversation_id"]]
    for item in client.get("/v1/users", headers=a.auth).json()["items"]:
        assert item["id"] in (a.admin_user_id, a.bot_user_id)
    assert client.get("/v1/conversations", params={"channel_id": b_channel.id}, headers=a.auth).json()["items"] == []
    assert (
        client.get("/v1/conversations", params={"contact_id": b_written["contact_id"]}, headers=a.auth).json()["items"]
        == []
    )

    foreign_reads = [
        f"/v1/conversations/{b_written['conversation_id']}",
        f"/v1/contacts/{b_written['contact_id']}",
    ]
    for path in foreign_reads:
        response = client.get(path, headers=a.auth)
        assert response.status_code == 404 and response.json()["error_code"] == "not_found", path
        assert client.get(path, headers=b.auth).status_code == 200, path


def test_signatures_are_per_channel(client, two_tenants, db_url):
    (_, a_channel, _), (_, b_channel, _) = two_tenants
    payload = sms_payload(b_channel)
    b_channel_with_a_secret = type(b_channel)(b_channel.id, b_channel.kind, b_channel.address, a_channel.secret)
    assert post_signed(client, b_channel_with_a_secret, payload).status_code == 401


def test_roles_are_enforced(client, two_tenants):
    (a, _, _), _ = two_tenants
    made = {}
    for role in ("agent", "auditor"):
        response = client.post("/v1/users", json={"name": role.title(), "role": role}, headers=a.auth)
        assert response.status_code == 201, response.text
        made[role] = {"Authorization": f"Bearer {response.json()['api_key']}"}

    assert client.get("/v1/users", headers=made["agent"]).status_code == 200
    assert client.get("/v1/users", headers=made["auditor"]).status_code == 403
    for role in ("agent", "auditor"):
        new_user = client.post("/v1/users", json={"name": "X", "role": "agent"}, headers=made[role])
        assert new_user.status_code == 403 and new_user.json()["error_code"] == "forbidden"
        new_channel = client.post("/v1/channels", json={"kind": "sms", "address": "+18045550111"}, headers=made[role])
        assert new_channel.status_code == 403
        assert client.get("/v1/conversations", headers=made[role]).status_code == 200
    names = {item["name"] for item in client.get("/v1/users", headers=a.auth).json()["items"]}
    assert {"Agent", "Auditor"} <= names


def test_keys_and_webhook_secrets_are_not_stored_in_plain_text(client, two_tenants, db_url):
    (a, a_channel, _), (b, b_channel, _) = two_tenants
    user = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=a.auth).json()
    account_sid = "AC" + "7e1a" * 8
    twilio = create_channel(
        client,
        a,
        kind="twilio",
        address="+18045550177",
        webhook_secret="twilio-auth-token-secret-value",
        credentials={"account_sid": account_sid},
    )
    slack_url = "https://hooks.slack.com/services/T0/B0/slack-webhook-secret-path"
    slack = client.post(
        "/v1/channels",
        json={"kind": "slack", "address": "#sales", "credentials": {"webhook_url": slack_url}},
        headers=a.auth,
    )
    assert slack.status_code == 201 and slack_url not in slack.text and account_sid not in str(twilio)
    secrets = [a.api_key, b.api_key, user["api_key"], a_channel.secret, b_channel.secret, twilio.secret]
    secrets += [account_sid, slack_url]
    with psycopg.connect(db_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'public'"
            ).fetchall()
        ]
        dump = "\n".join(str(row) for table in tables for row in conn.execute(f'select * from "{table}"').fetchall())
    assert hash_key(a.api_key) in dump, "the scan did not reach the events"
    for secret in secrets:
        assert secret not in dump
        assert secret.encode().hex() not in dump


def test_every_event_records_company_actor_and_time(client, runtime, two_tenants):
    (a, _, _), (b, _, _) = two_tenants
    client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=a.auth)
    notifications = runtime.ledger.recorder.select_notifications(start=None, limit=1000)
    events = [runtime.ledger.mapper.to_domain_event(notification) for notification in notifications]
    assert len(events) > 10
    for event in events:
        assert event.company_id in (a.company_id, b.company_id), event
        assert event.actor == "system" or event.actor.split(":")[0] in ("user", "provider"), event
        assert event.recorded_at.tzinfo is not None, event
    actors = {event.actor.split(":")[0] for event in events}
    assert actors == {"system", "user", "provider"}


def test_concurrent_user_creation_keeps_every_user(client):
    tenant = create_company(client)
    barrier = Barrier(12)

    def add(index):
        barrier.wait()
        return client.post("/v1/users", json={"name": f"Agent {index}", "role": "agent"}, headers=tenant.auth)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(add, range(12)))
    assert [response.status_code for response in responses] == [201] * 12
    names = {item["name"] for item in client.get("/v1/users", headers=tenant.auth).json()["items"]}
    assert {f"Agent {index}" for index in range(12)} <= names


def test_a_revoked_key_is_refused(client, runtime):
    from ledger.credentials import hash_key
    from ledger.tenancy import ApiKey

    tenant = create_company(client)
    assert client.get("/v1/users", headers=tenant.auth).status_code == 200
    key = runtime.ledger.repository.get(ApiKey.id_for(hash_key(tenant.api_key)))
    key.revoke(actor=f"user:{tenant.admin_user_id}")
    runtime.ledger.commit(key)
    refused = client.get("/v1/users", headers=tenant.auth)
    assert refused.status_code == 401 and refused.json()["error_code"] == "unauthorized"


def test_a_twilio_channel_needs_the_auth_token(client, db_url):
    tenant = create_company(client)
    events_before = count_events(db_url)
    response = client.post("/v1/channels", json={"kind": "twilio", "address": "+18045550100"}, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "webhook_secret"
    assert count_events(db_url) == events_before


def test_a_second_channel_with_the_same_kind_and_address_is_a_conflict(client, db_url):
    tenant = create_company(client)
    create_channel(client, tenant, address="+1 804 555 0100")
    again = client.post("/v1/channels", json={"kind": "sms", "address": "+18045550100"}, headers=tenant.auth)
    assert again.status_code == 409, again.text
    assert again.json()["error_code"] == "conflict"
    assert create_channel(client, tenant, kind="whatsapp", address="+18045550100").kind == "whatsapp"
    other = create_company(client, "Other")
    assert create_channel(client, other, address="+18045550100").address == "+18045550100"


def test_concurrent_creations_of_one_channel_make_exactly_one(client, db_url):
    tenant = create_company(client)
    body = {"kind": "email", "address": "help@acme.example"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/channels", json=body, headers=tenant.auth), range(8)))
    assert sorted(response.status_code for response in answers) == [201] + [409] * 7
    assert count_events(db_url, "Channel.Created") == 1


@pytest.mark.parametrize("name", ["Bad\x07name", "line\nbreak", "tab\there", "\x1b[31mred"])
def test_control_characters_in_names_are_refused(client, db_url, name):
    tenant = create_company(client)
    events_before = count_events(db_url)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    attempts = [
        client.post("/v1/companies", json={"name": name}, headers=operator),
        client.post("/v1/users", json={"name": name, "role": "agent"}, headers=tenant.auth),
        client.post("/v1/channels", json={"kind": "sms", "address": "+18045550100", "name": name}, headers=tenant.auth),
    ]
    for response in attempts:
        assert response.status_code == 422, response.text
        assert response.json()["error_code"] == "validation_error"
        assert response.json()["details"][0]["field"] == "name"
    assert count_events(db_url) == events_before


@pytest.mark.parametrize(
    ("kind", "address", "extra", "field"),
    [
        ("twilio", "+18045550100", {"webhook_secret": "twilio-auth-token-0001"}, "credentials.account_sid"),
        ("sendgrid", "support@acme.test", {}, "credentials.api_key"),
        ("slack", "#sales", {}, "credentials.webhook_url"),
        ("slack", "#sales", {"credentials": {"webhook_url": "ftp://hooks"}}, "credentials.webhook_url"),
        ("sms", "+18045550100", {"credentials": {"password": "x"}}, "credentials.password"),
    ],
)
def test_a_channel_without_its_provider_credentials_is_refused(client, db_url, kind, address, extra, field):
    tenant = create_company(client)
    events_before = count_events(db_url)
    response = client.post("/v1/channels", json={"kind": kind, "address": address, **extra}, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field
    assert count_events(db_url) == events_before


def test_a_slack_channel_receives_nothing(client, db_url):
    tenant = create_company(client)
    slack = client.post(
        "/v1/channels",
        json={"kind": "slack", "address": "#sales", "credentials": {"webhook_url": "https://hooks.slack.com/x"}},
        headers=tenant.auth,
    ).json()
    assert slack["status_url"].endswith(f"/v1/webhooks/{slack['id']}/status")
    events_before = count_events(db_url)
    response = client.post(f"/v1/webhooks/{slack['id']}", json={"text": "hi"})
    assert response.status_code == 422 and response.json()["error_code"] == "validation_error"
    assert count_events(db_url) == events_before


def test_channels_are_listed_with_their_urls_and_never_their_secrets(client):
    tenant = create_company(client)
    agent = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
    addresses = [f"+1804555{n:04d}" for n in range(8)]
    with ThreadPoolExecutor(8) as pool:  # all of them write to the company's stream
        created = list(pool.map(lambda address: create_channel(client, tenant, address=address), addresses))
    listed = client.get("/v1/channels", headers=tenant.auth)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert sorted(item["id"] for item in items) == sorted(channel.id for channel in created)
    for item in items:
        assert item["status_url"] == item["webhook_url"] + "/status"
        assert "webhook_secret" not in item and "credentials" not in item
    one = client.get(f"/v1/channels/{created[0].id}", headers=tenant.auth).json()
    assert one["address"] == created[0].address
    other = create_company(client, "Other")
    assert client.get(f"/v1/channels/{created[0].id}", headers=other.auth).status_code == 404
    as_agent = {"Authorization": f"Bearer {agent['api_key']}"}
    assert client.get("/v1/channels", headers=as_agent).status_code == 403


def test_a_rotated_secret_replaces_the_old_one_at_once(client, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    rotated = client.post(f"/v1/channels/{channel.id}/rotate-secret", json={}, headers=tenant.auth)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["webhook_secret"]
    assert new_secret != channel.secret
    assert post_signed(client, channel, sms_payload(channel)).status_code == 401
    channel.secret = new_secret
    assert post_signed(client, channel, sms_payload(channel)).status_code == 201

    twilio = create_channel(
        client,
        tenant,
        kind="twilio",
        address="+18045550177",
        webhook_secret="twilio-auth-token-0001",
        credentials={"account_sid": "AC" + "0" * 32},
    )
    events_before = count_events(db_url)
    refused = client.post(f"/v1/channels/{twilio.id}/rotate-secret", json={}, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["details"][0]["field"] == "webhook_secret"
    assert count_events(db_url) == events_before
    token = client.post(
        f"/v1/channels/{twilio.id}/rotate-secret",
        json={"webhook_secret": "twilio-auth-token-0002"},
        headers=tenant.auth,
    )
    assert token.status_code == 200 and token.json()["webhook_secret"] == "twilio-auth-token-0002"
