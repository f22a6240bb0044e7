"""Guarantee 10: every event is hash-chained to the previous one of its stream and each stream's
head is anchored outside it; altering a byte, deleting an event in the middle or at the end, or
swapping two events' payloads is detected by `ledger verify` and by the history endpoint, which
name the stream and the version."""

import subprocess
import sys

import psycopg
import pytest

from tests.support import create_channel, create_company, post_signed, sms_payload
from tests.test_projections import worker_env


def conversation_of_four_events(client) -> tuple:
    """A conversation whose stream holds Started, then three messages (versions 1 to 4)."""
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    answers = [post_signed(client, channel, sms_payload(channel, body=f"message {n}")).json() for n in range(3)]
    return tenant, answers[0]["conversation_id"]


def history(client, tenant, conversation_id: str, **params) -> dict:
    answer = client.get(f"/v1/conversations/{conversation_id}/history", params=params, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def run_ledger(settings, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "api.cli", *arguments]
    env = {**worker_env(settings), "COLUMNS": "200"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def verify(settings, *options: str) -> subprocess.CompletedProcess:
    return run_ledger(settings, "verify", *options)


def test_an_untouched_log_verifies_and_the_history_shows_every_event_with_its_hashes(client, settings):
    tenant, conversation_id = conversation_of_four_events(client)
    found = history(client, tenant, conversation_id)
    assert found["verified"] is True and found["broken_at"] is None
    events = found["events"]
    assert [event["version"] for event in events] == [1, 2, 3, 4]
    assert [event["type"] for event in events] == ["Started"] + ["InboundMessageReceived"] * 3
    assert events[0]["prev_hash"] == "0" * 64
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(events, events[1:], strict=False))
    assert found["head_hash"] == events[-1]["hash"]
    assert events[1]["data"]["body"] == "message 0" and events[1]["actor"].startswith("provider:")
    assert [e["version"] for e in history(client, tenant, conversation_id, actor=events[1]["actor"])["events"]] == [
        1,
        2,
        3,
        4,
    ]
    lines = client.get(
        f"/v1/conversations/{conversation_id}/history", params={"format": "jsonl"}, headers=tenant.auth
    ).text.splitlines()
    assert len(lines) == 5 and '"verified":true' in lines[-1]
    result = verify(settings)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout

    replay = run_ledger(settings, "replay", conversation_id)
    assert replay.returncode == 0, replay.stderr
    assert "InboundMessageReceived" in replay.stdout and "verified" in replay.stdout
    as_json = run_ledger(settings, "replay", conversation_id, "--json").stdout.splitlines()
    assert len(as_json) == 5 and '"verified":true' in as_json[-1]


TAMPERING = {
    "one byte altered": (
        "update ledger_events set state = overlay(state placing '\\x58'::bytea from 20 for 1)"
        " where originator_id = %(id)s and originator_version = 3",
        3,
    ),
    "an event deleted in the middle": (
        "delete from ledger_events where originator_id = %(id)s and originator_version = 2",
        2,
    ),
    "two payloads swapped": (
        """update ledger_events e set state = other.state from ledger_events other
           where e.originator_id = %(id)s and other.originator_id = %(id)s
             and e.originator_version in (2, 3) and other.originator_version = 5 - e.originator_version""",
        2,
    ),
    "the last event deleted": (
        "delete from ledger_events where originator_id = %(id)s and originator_version = 4",
        4,
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_tampering_is_detected_naming_the_stream_and_version(client, settings, db_url, tampering):
    tenant, conversation_id = conversation_of_four_events(client)
    statement, broken_at = TAMPERING[tampering]
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute(statement, {"id": conversation_id}).rowcount >= 1

    found = history(client, tenant, conversation_id)
    assert (found["verified"], found["broken_at"]) == (False, broken_at)
    for options in ([], ["--conversation", conversation_id]):
        result = verify(settings, *options)
        assert result.returncode == 1, result.stdout
        assert f"stream {conversation_id} at version {broken_at}" in result.stderr
    assert run_ledger(settings, "replay", conversation_id).returncode == 1


def test_history_is_for_admins_and_auditors_of_the_company(client):
    tenant, conversation_id = conversation_of_four_events(client)
    other = create_company(client, "Other")
    agent = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
    auditor = client.post("/v1/users", json={"name": "Audrey", "role": "auditor"}, headers=tenant.auth).json()
    path = f"/v1/conversations/{conversation_id}/history"
    assert client.get(path, headers={"Authorization": f"Bearer {auditor['api_key']}"}).status_code == 200
    assert client.get(path, headers={"Authorization": f"Bearer {agent['api_key']}"}).status_code == 403
    assert client.get(path, headers=other.auth).status_code == 404
    # only conversations: a channel's, a user's or a key's stream (sealed secrets, key hashes) is no history
    channels = client.get("/v1/channels", headers=tenant.auth).json()["items"]
    auditing = {"Authorization": f"Bearer {auditor['api_key']}"}
    for stream_id in (channels[0]["id"], tenant.admin_user_id, tenant.company_id):
        answer = client.get(f"/v1/conversations/{stream_id}/history", headers=auditing)
        assert answer.status_code == 404 and answer.json()["error_code"] == "not_found", stream_id


def test_an_altered_sealed_value_is_a_broken_event_and_the_state_says_so(client, settings, db_url):
    """A byte changed inside a sealed body still parses as JSON: AES-GCM's tag is what catches it."""
    tenant, conversation_id = conversation_of_four_events(client)
    where = "where originator_id = %s and originator_version = 2"
    with psycopg.connect(db_url, autocommit=True) as conn:
        stored = bytes(conn.execute(f"select state from ledger_events {where}", [conversation_id]).fetchone()[0])
        at = stored.index(b"sealed:v1:") + 20  # inside the nonce's base64
        altered = stored[:at] + (b"B" if stored[at : at + 1] == b"A" else b"A") + stored[at + 1 :]
        conn.execute(f"update ledger_events set state = %s {where}", [altered, conversation_id])

    found = history(client, tenant, conversation_id)
    assert (found["verified"], found["broken_at"]) == (False, 2)
    state = client.get(f"/v1/conversations/{conversation_id}/state", params={"version": 4}, headers=tenant.auth)
    assert state.status_code == 409 and state.json()["details"][0]["issue"] == "undecodable_event"
