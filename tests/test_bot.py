"""The AI bot answers first (through the dispatcher, once per message, replay-safe), hands off
to the least busy available agent when asked for a person, and the unassigned queue drains
in order when an agent becomes available."""

from collections import Counter

import pytest

from tests.conftest import make_settings
from tests.support import (
    count_events,
    create_channel,
    create_company,
    poll,
    post_signed,
    read_conversation,
    sms_payload,
)

TRANSFERRED = "Conversation.OwnerTransferred"


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    return make_settings(db_url, redis_url, tmp_path, policies="bot,assignment,extraction")


def add_agents(client, tenant, count: int, available: bool = True) -> list[dict]:
    agents = []
    for n in range(count):
        agent = client.post("/v1/users", json={"name": f"Agent {n}", "role": "agent"}, headers=tenant.auth).json()
        if available:
            answer = client.put(f"/v1/users/{agent['id']}/availability", json={"available": True}, headers=tenant.auth)
            assert answer.status_code == 200 and answer.json()["available"] is True
        agents.append(agent)
    return agents


def say(client, channel, sender: str, text: str) -> dict:
    answer = post_signed(client, channel, sms_payload(channel, sender=sender, body=text))
    assert answer.status_code == 201, answer.text
    return answer.json()


def conversation_when(client, tenant, conversation_id: str, condition, what: str) -> dict:
    def satisfied() -> dict | None:
        answer = client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth)
        assert answer.status_code in (200, 404), answer.text  # 404: not projected yet
        return answer.json() if answer.status_code == 200 and condition(answer.json()) else None

    return poll(satisfied, 20, what)


def events_of_type(runtime, topic_suffix: str) -> list:
    notifications = runtime.ledger.recorder.select_notifications(start=None, limit=100_000)
    return [
        runtime.ledger.mapper.to_domain_event(notification)
        for notification in notifications
        if notification.topic.endswith(topic_suffix)
    ]


def test_the_bot_answers_once_even_after_its_consumer_is_rebuilt(client, runtime, db_url, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    inbound = say(client, channel, "+18045551234", "Hello there")

    def answered(conversation: dict) -> bool:
        messages = conversation["messages"]
        return len(messages) == 2 and messages[1]["status"] == "sent"

    conversation = conversation_when(client, tenant, inbound["conversation_id"], answered, "the bot's reply")
    assert conversation["owner_id"] == tenant.bot_user_id
    reply = conversation["messages"][1]
    assert (reply["direction"], reply["author_id"]) == ("outbound", tenant.bot_user_id)
    [delivery] = mock_providers.requests()
    assert delivery["idempotency_key"] == reply["id"] and delivery["to"] == "+18045551234"

    events = count_events(db_url)
    runtime.projector.rebuild(runtime.projector.get("bot"))  # replays the whole log through the bot
    assert count_events(db_url) == events
    assert len(read_conversation(client, tenant, inbound["conversation_id"])["messages"]) == 2
    assert len(mock_providers.requests()) == 1


def test_asking_for_a_person_hands_off_to_an_available_agent(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    [busy, free] = add_agents(client, tenant, 2)
    # the first agent already owns a conversation
    first = say(client, channel, "+18045550001", "I want to talk to a human")
    owner = conversation_when(
        client, tenant, first["conversation_id"], lambda c: c["owner_id"] != tenant.bot_user_id, "the first handoff"
    )["owner_id"]
    second = say(client, channel, "+18045550002", "can I talk to a real person please")

    def handed_off(conversation: dict) -> bool:  # the summary and the timeline are two projections
        return conversation["owner_id"] != tenant.bot_user_id and len(conversation["messages"]) == 2

    conversation = conversation_when(client, tenant, second["conversation_id"], handed_off, "the handoff")
    assert {owner, conversation["owner_id"]} == {busy["id"], free["id"]}  # the least busy got the second
    bot_reply = conversation["messages"][-1]
    assert bot_reply["author_id"] == tenant.bot_user_id and "person" in bot_reply["body"]
    assert count_events(db_url, TRANSFERRED) == 2


def test_ten_handoffs_among_three_agents_are_spread_evenly(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    agents = add_agents(client, tenant, 3)
    conversations = [say(client, channel, f"+1804555{n:04d}", "agent please")["conversation_id"] for n in range(10)]
    owners = [
        conversation_when(client, tenant, cid, lambda c: c["owner_id"] != tenant.bot_user_id, "a handoff")["owner_id"]
        for cid in conversations
    ]
    spread = sorted(Counter(owners).values())
    assert set(owners) <= {agent["id"] for agent in agents}
    assert spread in ([3, 3, 4], [2, 4, 4]), spread


def test_with_nobody_available_the_queue_holds_and_drains_in_order(client, runtime, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    [agent] = add_agents(client, tenant, 1, available=False)
    waiting = []
    for n in range(3):
        conversation_id = say(client, channel, f"+1804555{n:04d}", "talk to someone")["conversation_id"]
        conversation_when(client, tenant, conversation_id, lambda c: c["owner_id"] is None, "the handoff to the queue")
        waiting.append(conversation_id)
    queue = client.get("/v1/inbox/unassigned", headers=tenant.auth).json()
    assert [item["id"] for item in queue["items"]] == waiting

    client.put(f"/v1/users/{agent['id']}/availability", json={"available": True}, headers=tenant.auth)
    for conversation_id in waiting:
        conversation_when(client, tenant, conversation_id, lambda c: c["owner_id"] == agent["id"], "the drain")
    assigned = [
        event.originator_id
        for event in events_of_type(runtime, "Conversation.OwnerTransferred")
        if event.actor == "policy:assignment"
    ]
    assert [str(conversation_id) for conversation_id in assigned] == waiting  # oldest first


def test_faq_answers_and_three_misunderstandings_hand_off(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    faq = {"entries": [{"question": "What are your opening hours?", "answer": "We are open 9 to 5."}]}
    assert client.put("/v1/bot/faq", json=faq, headers=tenant.auth).status_code == 200
    customer = "+18045551111"
    conversation_id = say(client, channel, customer, "hi, what are the opening hours?")["conversation_id"]

    def bot_replies(conversation: dict) -> list[str]:
        return [m["body"] for m in conversation["messages"] if m["author_id"] == tenant.bot_user_id]

    conversation = conversation_when(client, tenant, conversation_id, lambda c: bot_replies(c), "the FAQ answer")
    assert bot_replies(conversation) == ["We are open 9 to 5."]
    for n, text in enumerate(["blue elephants", "purple rain", "green trees"], start=2):
        say(client, channel, customer, text)
        conversation = conversation_when(
            client, tenant, conversation_id, lambda c, n=n: len(bot_replies(c)) == n, "the bot's answer"
        )
    assert conversation["owner_id"] is None  # nobody available: the unassigned queue
    assert "person" in bot_replies(conversation)[-1]
