"""Outbound sends through the API: queueing with Idempotency-Key (also under concurrency),
tenant isolation, and the whole path to the provider and back into the read models."""

from concurrent.futures import ThreadPoolExecutor

from tests.support import (
    count_events,
    create_channel,
    create_company,
    post_signed,
    queue_message,
    read_conversation,
    read_message,
    settled_message,
    sms_payload,
)

CUSTOMER = "+18045551234"


def test_a_send_is_queued_sent_once_and_shown_in_the_timeline_and_summary(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    queued = queue_message(client, tenant, channel, "+1 804-555-1234", "Your order shipped", key="order-42")
    assert queued.status_code == 202, queued.text
    answer = queued.json()
    assert answer["status"] == "queued" and answer["position"] > 0

    message = settled_message(client, tenant, answer["message_id"])
    assert message["status"] == "sent" and message["direction"] == "outbound"
    assert [(a["n"], a["outcome"], a["http_status"]) for a in message["attempts"]] == [(1, "sent", 200)]
    assert [change["status"] for change in message["status_history"]] == ["queued", "sent"]
    [request] = mock_providers.requests()
    assert request["provider"] == "sms" and request["to"] == CUSTOMER and request["body"] == "Your order shipped"
    assert request["idempotency_key"] == answer["message_id"] and request["accepted"]
    assert message["provider_message_id"] == request["provider_message_id"]

    conversation = read_conversation(client, tenant, answer["conversation_id"])
    assert conversation["message_count"] == 1 and conversation["last_message_preview"] == "Your order shipped"
    [shown] = conversation["messages"]
    assert (shown["id"], shown["status"], shown["seq"]) == (answer["message_id"], "sent", 1)
    assert conversation["owner_id"] == tenant.admin_user_id  # who started the conversation


def test_a_reply_joins_the_customers_conversation(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    inbound = post_signed(client, channel, sms_payload(channel, sender=CUSTOMER)).json()
    reply = client.post(
        f"/v1/conversations/{inbound['conversation_id']}/messages", json={"body": "Hello back"}, headers=tenant.auth
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["conversation_id"] == inbound["conversation_id"]
    settled_message(client, tenant, reply.json()["message_id"])
    conversation = read_conversation(client, tenant, inbound["conversation_id"])
    assert [(m["seq"], m["direction"], m["status"]) for m in conversation["messages"]] == [
        (1, "inbound", "received"),
        (2, "outbound", "sent"),
    ]


def test_twenty_concurrent_requests_with_one_idempotency_key_queue_one_message(client, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: queue_message(client, tenant, channel, CUSTOMER, key="k-1"), range(20)))
    assert sorted(answer.status_code for answer in answers) == [200] * 19 + [202]
    assert len({answer.json()["message_id"] for answer in answers}) == 1
    assert count_events(db_url, "Conversation.OutboundMessageQueued") == 1
    again = client.post(
        f"/v1/conversations/{answers[0].json()['conversation_id']}/messages",
        json={"body": "another body, the same key"},
        headers={**tenant.auth, "Idempotency-Key": "k-1"},
    )
    assert again.status_code == 200 and again.json()["message_id"] == answers[0].json()["message_id"]


def test_without_a_key_every_request_is_a_new_message(client, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    first, second = (queue_message(client, tenant, channel, CUSTOMER) for _ in range(2))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["message_id"] != second.json()["message_id"]
    assert first.json()["conversation_id"] == second.json()["conversation_id"]


def test_sends_to_foreign_or_missing_ids_are_404_and_roles_are_enforced(client, db_url):
    a, b = create_company(client, "A"), create_company(client, "B")
    a_channel, b_channel = create_channel(client, a), create_channel(client, b)
    b_conversation = post_signed(client, b_channel, sms_payload(b_channel)).json()["conversation_id"]
    auditor = client.post("/v1/users", json={"name": "Audrey", "role": "auditor"}, headers=a.auth).json()
    events_before = count_events(db_url)

    foreign = client.post(f"/v1/conversations/{b_conversation}/messages", json={"body": "x"}, headers=a.auth)
    assert foreign.status_code == 404 and foreign.json()["error_code"] == "not_found"
    assert queue_message(client, a, b_channel, CUSTOMER).status_code == 404
    assert client.post("/v1/conversations/nope/messages", json={"body": "x"}, headers=a.auth).status_code == 404
    as_auditor = client.post(
        "/v1/messages",
        json={"channel_id": a_channel.id, "to": CUSTOMER, "body": "x"},
        headers={"Authorization": f"Bearer {auditor['api_key']}"},
    )
    assert as_auditor.status_code == 403
    empty = client.post(f"/v1/conversations/{b_conversation}/messages", json={"body": " "}, headers=b.auth)
    assert empty.status_code == 422
    bad_to = client.post("/v1/messages", json={"channel_id": a_channel.id, "to": "nobody", "body": "x"}, headers=a.auth)
    assert bad_to.status_code == 422 and bad_to.json()["details"][0]["field"] == "to"
    assert count_events(db_url) == events_before

    queued = queue_message(client, b, b_channel, CUSTOMER).json()
    assert read_message(client, a, queued["message_id"])["error_code"] == "not_found"


def test_a_slack_message_goes_to_the_channels_webhook_and_every_projection_keeps_up(
    client, runtime, mock_providers, sending
):
    tenant = create_company(client)
    slack = client.post(
        "/v1/channels",
        json={
            "kind": "slack",
            "address": "#sales",
            "credentials": {"webhook_url": "https://hooks.slack.com/services/T/B/x"},
        },
        headers=tenant.auth,
    ).json()
    queued = client.post(
        "/v1/messages", json={"channel_id": slack["id"], "to": "#sales", "body": "New lead"}, headers=tenant.auth
    ).json()
    message = settled_message(client, tenant, queued["message_id"])
    assert message["status"] == "sent" and message["provider_message_id"] is None
    [request] = mock_providers.requests()
    assert (request["provider"], request["path"], request["body"]) == ("slack", "/services/T/B/x", "New lead")
    head = runtime.ledger.head_position()
    assert runtime.projector.wait_for(list(runtime.projector.projections), head, timeout=10) == head
