"""Inboxes: unread counts and waits after replies, read markers, transfers, close and reopen; the order,
the unassigned queue and who may read what; the assignment policy replayed. The live stream is in
tests/test_inbox_stream.py."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

import httpx
import pytest

from projections import inbox
from tests.conftest import make_settings
from tests.support import Tenant, create_channel, create_company, post_signed, read_conversation, sms_payload

PROJECTIONS = ("summaries", "timeline", "inbox")  # never the policies: they are not under test here
HEARTBEAT_SECONDS = 0.5


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    return make_settings(db_url, redis_url, tmp_path, sse_heartbeat_seconds=HEARTBEAT_SECONDS)


def project(runtime) -> None:
    for name in PROJECTIONS:
        runtime.projector.catch_up(runtime.projector.get(name))


@contextmanager
def projecting(runtime, interval: float = 0.05) -> Iterator[None]:
    """Catches the inbox's projections up every `interval` seconds in a thread, as a worker would."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            project(runtime)
            stop.wait(interval)

    thread = threading.Thread(target=run, name="projecting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def create_user(client: httpx.Client, tenant: Tenant, role: str = "agent", name: str = "Ann") -> Tenant:
    """A user of the tenant's company, as a Tenant whose key is the user's (admin_user_id: its id)."""
    response = client.post("/v1/users", json={"name": name, "role": role}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(tenant.company_id, body["api_key"], body["id"], tenant.bot_user_id)


def ok(response: httpx.Response) -> dict:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def inbox_of(client: httpx.Client, caller: Tenant, path: str = "/v1/inbox", min_position: int | None = None) -> dict:
    params = {} if min_position is None else {"min_position": min_position}
    response = client.get(path, params=params, headers=caller.auth)
    assert response.status_code == 200, response.text
    if min_position is not None:
        assert int(response.headers["X-Ledger-Position"]) >= min_position
    return response.json()


def item_of(box: dict, conversation_id: str) -> dict | None:
    return next((item for item in box["items"] if item["id"] == conversation_id), None)


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def recorded_at(client, tenant: Tenant, conversation_id: str, seq: int) -> datetime:
    conversation = ok(client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth))
    return at(next(message["recorded_at"] for message in conversation["messages"] if message["seq"] == seq))


def transfer(client, caller: Tenant, conversation_id: str, to_user_id: str | None) -> int:
    body = ok(
        client.post(
            f"/v1/conversations/{conversation_id}/transfer", json={"to_user_id": to_user_id}, headers=caller.auth
        )
    )
    return body["position"]


def command(client, caller: Tenant, conversation_id: str, name: str) -> dict:
    return ok(client.post(f"/v1/conversations/{conversation_id}/{name}", headers=caller.auth))


def reply(client, caller: Tenant, conversation_id: str, body: str = "On it") -> int:
    response = client.post(f"/v1/conversations/{conversation_id}/messages", json={"body": body}, headers=caller.auth)
    return ok(response)["position"]


def test_counts_follow_replies_read_markers_transfers_close_and_reopen(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    agent = create_user(client, tenant)
    bot_inbox = f"/v1/users/{tenant.bot_user_id}/inbox"

    def state(caller: Tenant, conversation_id: str, position: int, path: str = "/v1/inbox") -> tuple:
        project(runtime)
        box = inbox_of(client, caller, path, min_position=position)
        item = item_of(box, conversation_id)
        return None if item is None else (item["unread_count"], at(item["waiting_since"]), box["open_count"])

    first = ok(post_signed(client, channel, sms_payload(channel, body="Hello?")))
    conversation = first["conversation_id"]
    second = ok(post_signed(client, channel, sms_payload(channel, body="Anyone there?")))
    project(runtime)
    waiting_since = recorded_at(client, tenant, conversation, 1)
    assert state(tenant, conversation, second["position"], bot_inbox) == (2, waiting_since, 1)
    box = inbox_of(client, tenant, bot_inbox)
    assert box["owner_id"] == tenant.bot_user_id
    summary = box["items"][0]
    assert summary["owner_id"] == tenant.bot_user_id and summary["status"] == "open"
    assert summary["message_count"] == 2 and summary["last_message_preview"] == "Anyone there?"

    # The bot's reply does not end the wait.
    position = runtime.ledger.bot_answer(UUID(conversation), first["message_id"], "Hi, I am a bot", "greeting")
    assert state(tenant, conversation, position, bot_inbox) == (2, waiting_since, 1)

    # Transferred: counted with the new owner's marker (none yet), gone from the bot's inbox.
    position = transfer(client, tenant, conversation, agent.admin_user_id)
    assert state(agent, conversation, position) == (2, waiting_since, 1)
    assert state(tenant, conversation, position, bot_inbox) is None
    assert inbox_of(client, tenant, bot_inbox)["open_count"] == 0

    # Read: nothing unread, but the customer still waits for an answer.
    position = command(client, agent, conversation, "read")["position"]
    assert state(agent, conversation, position) == (0, waiting_since, 1)
    third = ok(post_signed(client, channel, sms_payload(channel, body="Hello??")))
    assert state(agent, conversation, third["position"]) == (1, waiting_since, 1)

    # A person's reply ends the wait.
    position = reply(client, agent, conversation)
    assert state(agent, conversation, position) == (0, None, 1)
    fourth = ok(post_signed(client, channel, sms_payload(channel, body="Thanks, and...")))
    project(runtime)
    fourth_at = recorded_at(client, tenant, conversation, 6)
    assert state(agent, conversation, fourth["position"]) == (1, fourth_at, 1)

    # Another user's marker is not the owner's; it counts once that user owns the conversation.
    position = command(client, tenant, conversation, "read")["position"]
    assert state(agent, conversation, position) == (1, fourth_at, 1)
    position = transfer(client, agent, conversation, tenant.admin_user_id)
    assert state(tenant, conversation, position) == (0, fourth_at, 1)
    assert state(agent, conversation, position) is None
    position = transfer(client, tenant, conversation, agent.admin_user_id)
    assert state(agent, conversation, position) == (1, fourth_at, 1)

    # Closed: out of every inbox; reopened: back as it was.
    closed = command(client, agent, conversation, "close")
    assert closed["status"] == "closed"
    assert state(agent, conversation, closed["position"]) is None
    assert inbox_of(client, agent)["open_count"] == 0
    summary = ok(client.get(f"/v1/conversations/{conversation}", headers=agent.auth))
    assert summary["status"] == "closed" and summary["owner_id"] == agent.admin_user_id
    position = command(client, agent, conversation, "reopen")["position"]
    assert state(agent, conversation, position) == (1, fourth_at, 1)

    # A new inbound message reopens a closed conversation, still with its owner.
    position = command(client, agent, conversation, "close")["position"]
    assert state(agent, conversation, position) is None
    fifth = ok(post_signed(client, channel, sms_payload(channel, body="Hello again")))
    assert state(agent, conversation, fifth["position"]) == (2, fourth_at, 1)
    item = item_of(inbox_of(client, agent), conversation)
    assert item["status"] == "open" and item["owner_id"] == agent.admin_user_id and item["message_count"] == 7


def test_inboxes_and_the_unassigned_queue_are_longest_waiting_first(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    agent = create_user(client, tenant)
    senders = ["+18045550001", "+18045550002", "+18045550003"]
    written = [ok(post_signed(client, channel, sms_payload(channel, sender=sender))) for sender in senders]
    first, second, third = (message["conversation_id"] for message in written)
    for conversation in (first, second, third):
        transfer(client, tenant, conversation, agent.admin_user_id)

    def order(caller: Tenant, path: str = "/v1/inbox") -> list[str]:
        project(runtime)
        return [item["id"] for item in inbox_of(client, caller, path)["items"]]

    assert order(agent) == [first, second, third]
    reply(client, agent, first)  # answered: nothing waits, so last
    assert order(agent) == [second, third, first]
    ok(post_signed(client, channel, sms_payload(channel, sender=senders[0], body="More")))
    assert order(agent) == [second, third, first]  # waiting again, but since just now
    reply(client, agent, second)
    assert order(agent) == [third, first, second]

    # The unassigned queue, in the same order; admins and agents see it.
    for conversation in (second, first, third):
        transfer(client, agent, conversation, None)
    assert order(agent, "/v1/inbox/unassigned") == [third, first, second]
    unassigned = inbox_of(client, tenant, "/v1/inbox/unassigned")
    assert unassigned["owner_id"] is None and unassigned["open_count"] == 3
    assert all(item["owner_id"] is None for item in unassigned["items"])
    assert inbox_of(client, agent)["items"] == []

    # What the assignment policy reads.
    transfer(client, tenant, second, agent.admin_user_id)
    project(runtime)
    with runtime.pool.connection() as conn:
        assert inbox.unassigned_queue(conn, tenant.company_id, datetime.now(UTC)) == [third, first]
        assert inbox.open_counts(conn, tenant.company_id) == {agent.admin_user_id: 1}
        assigned = inbox.last_assigned(conn, tenant.company_id)
    assert set(assigned) == {tenant.bot_user_id, agent.admin_user_id}
    assert assigned[agent.admin_user_id] > assigned[tenant.bot_user_id]

    # Another company's queue holds none of these.
    other = create_company(client, name="Globex")
    assert inbox_of(client, other, "/v1/inbox/unassigned")["items"] == []


def test_who_reads_which_inbox(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    agent = create_user(client, tenant)
    other_agent = create_user(client, tenant, name="Bob")
    auditor = create_user(client, tenant, role="auditor", name="Audrey")
    other = create_company(client, name="Globex")
    written = ok(post_signed(client, channel, sms_payload(channel)))
    transfer(client, tenant, written["conversation_id"], agent.admin_user_id)
    project(runtime)

    assert inbox_of(client, tenant, f"/v1/users/{agent.admin_user_id}/inbox")["open_count"] == 1
    assert inbox_of(client, agent)["owner_id"] == agent.admin_user_id
    assert inbox_of(client, other_agent)["items"] == []  # each agent sees their own
    assert inbox_of(client, tenant)["owner_id"] == tenant.admin_user_id

    def status(caller: Tenant | None, path: str) -> int:
        return client.get(path, headers=caller.auth if caller else {}).status_code

    assert status(agent, f"/v1/users/{other_agent.admin_user_id}/inbox") == 403
    assert status(agent, f"/v1/users/{agent.admin_user_id}/inbox") == 403  # admins only, even one's own
    assert status(tenant, f"/v1/users/{other.admin_user_id}/inbox") == 404  # another company's user
    assert status(tenant, f"/v1/users/{uuid4()}/inbox") == 404
    assert status(tenant, "/v1/users/not-an-id/inbox") == 404
    assert status(tenant, f"/v1/users/{channel.id}/inbox") == 404  # an id, but not a user's
    for path in ("/v1/inbox", "/v1/inbox/unassigned", "/v1/inbox/stream", f"/v1/users/{agent.admin_user_id}/inbox"):
        assert status(auditor, path) == 403, path
        assert status(None, path) == 401, path
    assert status(tenant, "/v1/inbox?min_position=-1") == 422
    too_far = client.get("/v1/inbox", params={"min_position": 10**9}, headers=tenant.auth)
    assert too_far.status_code == 422 and too_far.json()["details"][0]["issue"] == "beyond_head"
    assert client.get("/v1/inbox/stream", headers={**agent.auth, "Last-Event-ID": "x"}).status_code == 422


def test_the_assignment_policy_replayed_assigns_nothing_it_did_not_assign_live(client, runtime, work):
    """A person put a conversation in the unassigned queue after the agent became available: it stays there
    live (the queue drains when someone becomes available), and a rebuild of the policy must not drain it."""
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    agent = create_user(client, tenant)
    ok(client.put(f"/v1/users/{agent.admin_user_id}/availability", json={"available": True}, headers=tenant.auth))
    conversation_id = post_signed(client, channel, sms_payload(channel)).json()["conversation_id"]
    transfer(client, tenant, conversation_id, None)
    work()
    head = runtime.ledger.head_position()

    runtime.projector.rebuild(runtime.projector.get("assignment"))

    assert runtime.ledger.head_position() == head
    assert read_conversation(client, tenant, conversation_id, head)["owner_id"] is None
