"""The first hour: keys issued and revoked, contacts found, a duplicate channel refused, the error body of a
wrong method, configuration errors as one line and every command's --help. (/docs and the OpenAPI document:
tests/test_openapi.py; a second `ledger up` on a data dir: tests/test_up_lock.py.)"""

import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx

from ledger.credentials import hash_key, new_api_key
from ledger.tenancy import ApiKey, User
from tests.support import Tenant, count_events, create_channel, create_company, post_signed, sms_payload

LEDGER = str(Path(sys.executable).parent / "ledger")


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def new_user(client: httpx.Client, tenant: Tenant, role: str = "agent") -> tuple[str, str]:
    """The new user's id and key."""
    response = client.post("/v1/users", json={"name": role.title(), "role": role}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error_code", "message", "details"}
    assert response.json()["error_code"] == code


# -- keys ----------------------------------------------------------------------------------------------


def test_an_admin_issues_a_key_and_revoking_all_keys_takes_effect_at_once(client, db_url):
    tenant = create_company(client)
    user_id, first_key = new_user(client, tenant)
    issued = client.post(f"/v1/users/{user_id}/keys", headers=tenant.auth)
    assert issued.status_code == 201, issued.text
    second_key = issued.json()["api_key"]
    assert issued.json()["user_id"] == user_id and second_key.startswith("lk_") and second_key != first_key
    for key in (first_key, second_key):
        assert client.get("/v1/users", headers=bearer(key)).status_code == 200

    revoked = client.delete(f"/v1/users/{user_id}/keys", headers=tenant.auth)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["user_id"] == user_id and revoked.json()["revoked"] == 2
    assert count_events(db_url, "ApiKey.KeyRevoked") == 2
    for key in (first_key, second_key):  # the very next request: no cache keeps a revoked key alive
        assert_error(client.get("/v1/users", headers=bearer(key)), 401, "unauthorized")

    again = client.delete(f"/v1/users/{user_id}/keys", headers=tenant.auth)
    assert again.status_code == 200 and again.json()["revoked"] == 0
    assert count_events(db_url, "ApiKey.KeyRevoked") == 2
    fresh = client.post(f"/v1/users/{user_id}/keys", headers=tenant.auth).json()["api_key"]
    assert client.get("/v1/users", headers=bearer(fresh)).status_code == 200


def test_keys_are_managed_by_admins_of_the_company_only(client, db_url):
    tenant, other = create_company(client), create_company(client, "Other")
    user_id, agent_key = new_user(client, tenant)
    before = count_events(db_url)
    assert_error(client.post(f"/v1/users/{user_id}/keys", headers=bearer(agent_key)), 403, "forbidden")
    assert_error(client.delete(f"/v1/users/{user_id}/keys", headers=bearer(agent_key)), 403, "forbidden")
    assert_error(client.post(f"/v1/users/{user_id}/keys", headers=other.auth), 404, "not_found")
    assert_error(client.delete(f"/v1/users/{user_id}/keys", headers=other.auth), 404, "not_found")
    assert_error(client.post("/v1/users/not-a-uuid/keys", headers=tenant.auth), 404, "not_found")
    assert_error(client.post(f"/v1/users/{user_id}/keys"), 401, "unauthorized")
    assert count_events(db_url) == before
    own = client.delete(f"/v1/users/{tenant.admin_user_id}/keys", headers=tenant.auth)
    assert own.status_code == 200 and own.json()["revoked"] == 1  # the contract has no exception for oneself
    assert_error(client.get("/v1/users", headers=tenant.auth), 401, "unauthorized")


def test_revoking_finds_the_keys_of_users_created_before_users_listed_them(client, runtime):
    """A User stream written before User.KeyAdded existed: its keys are found in the log."""
    tenant = create_company(client)
    legacy = User._create(
        User.Created, id=uuid4(), company_id=tenant.company_id, actor="system", name="Old", role="agent"
    )
    api_key = new_api_key()
    runtime.ledger.commit(legacy, ApiKey.issue(tenant.company_id, legacy.id, hash_key(api_key), "system"))
    assert not runtime.ledger.find(User, legacy.id).keys_tracked
    assert client.get("/v1/users", headers=bearer(api_key)).status_code == 200
    revoked = client.delete(f"/v1/users/{legacy.id}/keys", headers=tenant.auth)
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1, revoked.text
    assert_error(client.get("/v1/users", headers=bearer(api_key)), 401, "unauthorized")


def test_a_bot_user_can_be_given_a_key(client):
    tenant = create_company(client)
    issued = client.post(f"/v1/users/{tenant.bot_user_id}/keys", headers=tenant.auth)
    assert issued.status_code == 201, issued.text
    assert_error(client.get("/v1/users", headers=bearer(issued.json()["api_key"])), 403, "forbidden")


# -- contacts ------------------------------------------------------------------------------------------


def test_contacts_are_found_by_name_email_phone_or_address_ignoring_case(client, runtime, work):
    tenant = create_company(client)
    sms = create_channel(client, tenant)
    alex = post_signed(client, sms, sms_payload(sms, sender="+1 804-555-0123")).json()["contact_id"]
    bea = post_signed(client, sms, sms_payload(sms, sender="+1 212-555-0188")).json()["contact_id"]
    changes = {"name": "Alex Smith", "email": "Alex@Example.com"}
    changed = client.patch(f"/v1/contacts/{alex}", json=changes, headers=tenant.auth)
    assert changed.status_code == 200, changed.text
    other = create_company(client, "Other")
    other_sms = create_channel(client, other)
    post_signed(client, other_sms, sms_payload(other_sms, sender="+1 804-555-0123"))
    work()

    def found(**params) -> list[str]:
        response = client.get("/v1/contacts", params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        assert response.headers["X-Ledger-Position"]
        return [contact["id"] for contact in response.json()["items"]]

    assert found(query="ALEX") == [alex]
    assert found(query="example.com") == [alex]
    assert found(query="+1212555") == [bea]
    assert found(query="(804) 555-01") == [alex]  # by digits
    assert found(query="555") == [alex, bea]  # most recently changed first
    assert found(query="nobody") == []
    assert found(query="%") == [] and found(query="_") == []  # taken literally
    assert sorted(found()) == sorted([alex, bea])

    first = client.get("/v1/contacts", params={"query": "555", "limit": 1}, headers=tenant.auth).json()
    assert [contact["id"] for contact in first["items"]] == [alex] and first["items"][0]["name"] == "Alex Smith"
    rest = client.get("/v1/contacts", params={"query": "555", "cursor": first["next_cursor"]}, headers=tenant.auth)
    assert [contact["id"] for contact in rest.json()["items"]] == [bea] and rest.json()["next_cursor"] is None
    for bad in ({"cursor": "nonsense"}, {"limit": 0}, {"query": ""}):
        assert_error(client.get("/v1/contacts", params=bad, headers=tenant.auth), 422, "validation_error")
    assert_error(client.get("/v1/contacts"), 401, "unauthorized")


def test_erased_contacts_do_not_match(client, runtime, work):
    tenant = create_company(client)
    sms = create_channel(client, tenant)
    contact = post_signed(client, sms, sms_payload(sms, sender="+1 804-555-0123")).json()["contact_id"]
    client.patch(f"/v1/contacts/{contact}", json={"name": "Alex Smith"}, headers=tenant.auth)
    erased = client.delete(f"/v1/contacts/{contact}/personal-data", headers=tenant.auth)
    assert erased.status_code == 200, erased.text
    position = erased.json()["position"]
    work()
    for query in ("alex", "8045550123", "erased"):
        response = client.get("/v1/contacts", params={"query": query, "min_position": position}, headers=tenant.auth)
        assert response.status_code == 200 and response.json()["items"] == [], (query, response.text)


# -- channels, methods ---------------------------------------------------------------------------------


def test_a_second_channel_with_the_same_kind_and_address_is_a_conflict(client, db_url):
    tenant = create_company(client)
    create_channel(client, tenant, address="+18045550100")
    before = count_events(db_url)
    again = client.post("/v1/channels", json={"kind": "sms", "address": "(804) 555-0100"}, headers=tenant.auth)
    assert_error(again, 409, "conflict")
    assert count_events(db_url) == before
    other_kind = client.post("/v1/channels", json={"kind": "whatsapp", "address": "+18045550100"}, headers=tenant.auth)
    assert other_kind.status_code == 201, other_kind.text


def test_a_wrong_method_is_405_with_the_error_body(client):
    tenant = create_company(client)
    response = client.put(f"/v1/users/{tenant.admin_user_id}/keys", headers=tenant.auth)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST, DELETE"
    assert response.json()["details"] == {"allowed_methods": ["POST", "DELETE"]}
    assert_error(client.delete("/v1/contacts"), 405, "method_not_allowed")


# -- configuration -------------------------------------------------------------------------------------


def test_a_configuration_error_is_one_line_without_a_traceback(tmp_path):
    env = {**os.environ, "LEDGER_DATA_DIR": str(tmp_path), "DATABASE_URL": "not a url", "LEDGER_SECRET_KEY": "short"}
    for command in (["migrate"], ["up", "--port", "1"], ["api"]):
        result = subprocess.run([LEDGER, *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "DATABASE_URL" in result.stderr and "LEDGER_SECRET_KEY" in result.stderr
        assert "not a url" not in result.stderr  # a URL may hold a password: never echoed
    assert list(tmp_path.iterdir()) == []


def test_every_command_describes_itself_and_its_environment():
    for command in ("up", "api", "worker", "dispatcher", "migrate", "rebuild", "verify", "replay"):
        shown = subprocess.run([LEDGER, command, "--help"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "environment variables" in shown.stdout and "DATABASE_URL" in shown.stdout, command
        assert "--log-level" in shown.stdout and "LEDGER_LOG_LEVEL" in shown.stdout, command
