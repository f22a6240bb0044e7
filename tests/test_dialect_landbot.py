"""Landbot's dialect: POST /messages/ is an assistance request, routed by topic and sent by the dispatcher."""

from tests.support import count_events, create_channel, create_company
from tests.test_assistance import SLACK_HOOK, settled_request, slack_channel


def test_a_landbot_message_is_routed_by_topic_and_sent(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    slack = slack_channel(client, tenant)
    email = create_channel(client, tenant, "email", "team@acme.example")

    sales = client.post("/messages/", json={"topic": "sales", "description": "Wants 50 seats"}, headers=tenant.auth)
    assert sales.status_code == 201, sales.text
    answer = sales.json()
    assert (answer["topic"], answer["description"], answer["channel_id"]) == ("sales", "Wants 50 seats", slack.id)
    assert answer["status"] == "queued"
    pricing = client.post("/messages/", json={"topic": "pricing", "description": "Discounts?"}, headers=tenant.auth)
    assert pricing.json()["channel_id"] == email.id

    assert settled_request(client, tenant, answer["id"])["status"] == "sent"
    [to_slack] = [entry for entry in mock_providers.requests() if entry["idempotency_key"] == answer["id"]]
    assert to_slack["provider"] == "slack" and "[sales] Wants 50 seats" in to_slack["body"]
    assert SLACK_HOOK.rsplit("/", 1)[-1] in to_slack["path"]
    # the same events as POST /v1/assistance-requests: one request each, nothing else
    assert count_events(db_url, "AssistanceRequest.Requested") == 2


def test_a_landbot_message_on_an_unrouted_topic_is_refused_and_appends_nothing(client, db_url):
    tenant = create_company(client)
    refused = client.post("/messages/", json={"topic": "legal", "description": "A contract"}, headers=tenant.auth)
    assert refused.status_code == 422
    assert refused.json()["error_code"] == "validation_error"
    assert refused.json()["details"][0]["field"] == "topic"
    assert count_events(db_url, "AssistanceRequest.Requested") == 0


def test_a_landbot_message_needs_a_key_outside_the_demo(client):
    refused = client.post("/messages/", json={"topic": "sales", "description": "Hello"})
    assert refused.status_code == 401 and refused.json()["error_code"] == "unauthorized"


def test_a_landbot_message_repeated_with_its_idempotency_key_answers_the_first_request(client, db_url):
    tenant = create_company(client)
    slack_channel(client, tenant)
    headers = {**tenant.auth, "Idempotency-Key": "visitor-42"}
    first = client.post("/messages/", json={"topic": "sales", "description": "one"}, headers=headers)
    again = client.post("/messages/", json={"topic": "sales", "description": "two"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["description"] == "one"
    assert count_events(db_url, "AssistanceRequest.Requested") == 1
