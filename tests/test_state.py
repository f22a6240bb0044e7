"""GET /v1/conversations/{id}/state: the conversation as it was at a time or after a version,
replayed from the log by the pure fold of ledger.conversation_state, which agrees with the read models."""

from datetime import datetime

from tests.support import create_channel, create_company, post_signed, read_conversation, sms_payload


def state(client, tenant, conversation_id: str, **params):
    return client.get(f"/v1/conversations/{conversation_id}/state", params=params, headers=tenant.auth)


def ok_state(client, tenant, conversation_id: str, **params) -> dict:
    answer = state(client, tenant, conversation_id, **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def projected(client, runtime, tenant, conversation_id: str, position: int) -> dict:
    for name in ("summaries", "timeline"):
        runtime.projector.catch_up(runtime.projector.get(name))
    return read_conversation(client, tenant, conversation_id, min_position=position)


def versions_of(client, tenant, conversation_id: str, event_type: str) -> list[int]:
    answer = client.get(f"/v1/conversations/{conversation_id}/history", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return [event["version"] for event in answer.json()["events"] if event["type"] == event_type]


def new_agent(client, tenant) -> dict:
    answer = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()


def inbound(client, channel, body: str) -> dict:
    answer = post_signed(client, channel, sms_payload(channel, body=body))
    assert answer.status_code in (200, 201, 202), answer.text
    return answer.json()


def test_a_past_version_shows_the_owner_and_the_messages_of_that_moment(client):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = inbound(client, channel, "first")["conversation_id"]
    inbound(client, channel, "second")
    agent = new_agent(client, tenant)
    transfer = client.post(
        f"/v1/conversations/{conversation_id}/transfer", json={"to_user_id": agent["id"]}, headers=tenant.auth
    )
    assert transfer.status_code == 200, transfer.text
    inbound(client, channel, "third")
    second_version = versions_of(client, tenant, conversation_id, "InboundMessageReceived")[1]

    then = ok_state(client, tenant, conversation_id, version=second_version)
    assert then["version"] == second_version
    assert [m["body"] for m in then["messages"]] == ["first", "second"]
    assert (then["owner_id"], then["message_count"]) == (tenant.bot_user_id, 2)
    assert then["last_message_preview"] == "second"

    latest = ok_state(client, tenant, conversation_id, version=10_000)  # past the end: the latest
    assert [m["body"] for m in latest["messages"]] == ["first", "second", "third"]
    assert (latest["owner_id"], latest["message_count"]) == (agent["id"], 3)
    assert all(m["status"] == "received" and m["direction"] == "inbound" for m in latest["messages"])
    assert datetime.fromisoformat(latest["at"]) == datetime.fromisoformat(latest["messages"][-1]["recorded_at"])


def test_a_time_between_two_messages_shows_the_earlier_state(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = inbound(client, channel, "first")["conversation_id"]
    written = inbound(client, channel, "second")
    first, second = projected(client, runtime, tenant, conversation_id, written["position"])["messages"]
    earlier, later = datetime.fromisoformat(first["recorded_at"]), datetime.fromisoformat(second["recorded_at"])
    assert earlier < later
    between = earlier + (later - earlier) / 2

    then = ok_state(client, tenant, conversation_id, at=between.isoformat())
    assert [m["body"] for m in then["messages"]] == ["first"]
    assert then["message_count"] == 1
    assert datetime.fromisoformat(then["at"]) == between
    assert ok_state(client, tenant, conversation_id, at=later.isoformat())["message_count"] == 2
    before = state(client, tenant, conversation_id, at="2000-01-01T00:00:00Z")
    assert before.status_code == 404, before.text


def test_the_latest_state_equals_the_read_models(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = inbound(client, channel, "hello")["conversation_id"]
    queued = client.post(f"/v1/conversations/{conversation_id}/messages", json={"body": "hi"}, headers=tenant.auth)
    assert queued.status_code == 202, queued.text
    closed = client.post(f"/v1/conversations/{conversation_id}/close", headers=tenant.auth)
    assert closed.status_code == 200, closed.text
    read = projected(client, runtime, tenant, conversation_id, closed.json()["position"])

    replayed = ok_state(client, tenant, conversation_id, version=10_000)
    fields = ("id", "seq", "direction", "body", "status", "author_id", "provider_message_id")
    assert [[m[f] for f in fields] for m in replayed["messages"]] == [[m[f] for f in fields] for m in read["messages"]]
    assert [m["direction"] for m in replayed["messages"]] == ["inbound", "outbound"]
    summary = ("id", "number", "owner_id", "status", "message_count", "participants", "last_message_preview")
    assert {f: replayed[f] for f in summary} == {f: read[f] for f in summary}
    assert replayed["status"] == "closed"
    for f in ("created_at", "updated_at", "last_message_at"):
        assert datetime.fromisoformat(replayed[f]) == datetime.fromisoformat(read[f]), f


def test_the_state_is_for_admins_and_auditors_of_the_company_with_one_of_at_or_version(client):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = inbound(client, channel, "hello")["conversation_id"]
    agent = new_agent(client, tenant)
    auditor = client.post("/v1/users", json={"name": "Audrey", "role": "auditor"}, headers=tenant.auth).json()
    other = create_company(client, "Other")

    def status(api_key: str, **params) -> int:
        path = f"/v1/conversations/{conversation_id}/state"
        return client.get(path, params=params, headers={"Authorization": f"Bearer {api_key}"}).status_code

    assert status(auditor["api_key"], version=1) == 200
    assert status(agent["api_key"], version=1) == 403
    assert status(other.api_key, version=1) == 404
    assert status(tenant.api_key, version=0) == 422
    both = state(client, tenant, conversation_id, version=1, at="2030-01-01T00:00:00Z")
    assert both.status_code == 422, both.text
    assert both.json()["details"][0]["field"] == "at"
    assert state(client, tenant, conversation_id).status_code == 422
    assert state(client, tenant, channel.id, version=1).status_code == 404  # an id, but not a conversation's
