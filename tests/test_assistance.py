"""Assistance requests: routed by topic (the company's rules, else the defaults), sent by the dispatcher
through the mock providers with the outbound messages' retries, and recorded on the conversation."""

from uuid import UUID

import psycopg

from tests.support import count_events, create_channel, create_company, poll, post_signed, sms_payload

SLACK_HOOK = "https://hooks.slack.com/services/T/B/sales"
TEAM_EMAIL = "team@acme.example"


def slack_channel(client, tenant, address: str = "#sales", hook: str = SLACK_HOOK):
    return create_channel(client, tenant, "slack", address, credentials={"webhook_url": hook})


def ask(client, tenant, topic: str, description: str = "A customer asks for a demo", headers=None, **fields):
    body = {"topic": topic, "description": description, **fields}
    return client.post("/v1/assistance-requests", json=body, headers={**tenant.auth, **(headers or {})})


def settled_request(client, tenant, request_id: str, timeout: float = 20.0) -> dict:
    def settled() -> dict | None:
        response = client.get(f"/v1/assistance-requests/{request_id}", headers=tenant.auth)
        if response.status_code == 404:  # not projected yet
            return None
        found = response.json()
        done = found["status"] != "queued" and all(a["outcome"] for a in found["attempts"])
        return found if done else None

    return poll(settled, timeout, what=f"assistance request {request_id} settling")


def attempts_of(found: dict) -> list[tuple]:
    return [(attempt["n"], attempt["outcome"], attempt["http_status"]) for attempt in found["attempts"]]


def test_sales_goes_to_the_slack_channel_and_pricing_to_the_email_channel(client, mock_providers, sending):
    tenant = create_company(client)
    create_channel(client, tenant)  # an sms channel, which no default picks
    slack = slack_channel(client, tenant)
    email = create_channel(client, tenant, "email", TEAM_EMAIL)

    sales = ask(client, tenant, "sales", "Lead from Acme wants 50 seats")
    assert sales.status_code == 202, sales.text
    queued = sales.json()
    assert (queued["topic"], queued["channel_id"], queued["status"]) == ("sales", slack.id, "queued")
    assert queued["position"] > 0
    pricing = ask(client, tenant, "pricing", "Volume discount for 500 units?").json()
    assert pricing["channel_id"] == email.id

    sent_sales = settled_request(client, tenant, queued["id"])
    assert sent_sales["status"] == "sent" and attempts_of(sent_sales) == [(1, "sent", 200)]
    assert (sent_sales["to"], sent_sales["requested_by"]) == ("#sales", f"user:{tenant.admin_user_id}")
    sent_pricing = settled_request(client, tenant, pricing["id"])
    assert sent_pricing["status"] == "sent" and sent_pricing["provider_message_id"]
    requests = {entry["idempotency_key"]: entry for entry in mock_providers.requests()}
    assert len(requests) == 2
    to_slack, to_email = requests[queued["id"]], requests[pricing["id"]]
    assert (to_slack["provider"], to_slack["path"]) == ("slack", "/services/T/B/sales")
    assert to_slack["body"] == "[sales] Lead from Acme wants 50 seats" and to_slack["accepted"]
    assert (to_email["provider"], to_email["to"]) == ("email", TEAM_EMAIL)
    assert to_email["body"] == "Assistance requested: pricing\n\nVolume discount for 500 units?"


def test_pricing_falls_back_to_the_sendgrid_channel(client, mock_providers, sending):
    tenant = create_company(client)
    sendgrid = create_channel(client, tenant, "sendgrid", "sales@acme.example", credentials={"api_key": "SG.key"})
    queued = ask(client, tenant, "pricing", "Quote for the enterprise plan").json()
    assert queued["channel_id"] == sendgrid.id
    assert settled_request(client, tenant, queued["id"])["status"] == "sent"
    [request] = mock_providers.requests()
    assert (request["provider"], request["to"]) == ("sendgrid", "sales@acme.example")
    assert request["body"].startswith("Assistance requested: pricing\n\n")


def test_a_changed_rule_routes_to_the_new_channel(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    slack_channel(client, tenant)
    urgent = slack_channel(client, tenant, "#urgent", "https://hooks.slack.com/services/T/B/urgent")
    email = create_channel(client, tenant, "email", TEAM_EMAIL)

    rule = client.put("/v1/routing/topics/sales", json={"channel_id": urgent.id}, headers=tenant.auth)
    assert rule.status_code == 200, rule.text
    assert rule.json() | {"position": 0} == {"topic": "sales", "channel_id": urgent.id, "to": "#urgent", "position": 0}
    queued = ask(client, tenant, "sales").json()
    assert queued["channel_id"] == urgent.id

    # a new topic is data: any slug, to any channel that sends, at an address of its own
    billing = client.put(
        "/v1/routing/topics/billing_eu-2",
        json={"channel_id": email.id, "to": "Billing@Acme.example"},
        headers=tenant.auth,
    )
    assert billing.status_code == 200 and billing.json()["to"] == "billing@acme.example"
    routed = ask(client, tenant, "billing_eu-2", "Invoice question").json()
    assert routed["channel_id"] == email.id

    assert settled_request(client, tenant, queued["id"])["status"] == "sent"
    assert settled_request(client, tenant, routed["id"])["status"] == "sent"
    requests = {entry["idempotency_key"]: entry for entry in mock_providers.requests()}
    assert requests[queued["id"]]["path"] == "/services/T/B/urgent"
    assert requests[routed["id"]]["to"] == "billing@acme.example"

    again = client.put("/v1/routing/topics/sales", json={"channel_id": urgent.id}, headers=tenant.auth)
    assert again.status_code == 200  # the same rule again records nothing
    assert count_events(db_url, "Company.RoutingRuleSet") == 2


def test_a_provider_failure_is_retried_until_sent(client, mock_providers, sending):
    tenant = create_company(client)
    slack_channel(client, tenant)
    mock_providers.faults("500")
    queued = ask(client, tenant, "sales").json()
    found = settled_request(client, tenant, queued["id"])
    assert found["status"] == "sent" and found["failure_reason"] is None
    assert attempts_of(found) == [(1, "retry", 500), (2, "sent", 200)]
    assert found["attempts"][0]["next_attempt_at"] and found["attempts"][0]["reason"]
    log = mock_providers.requests()
    assert [(entry["idempotency_key"], entry["accepted"]) for entry in log] == [
        (queued["id"], False),
        (queued["id"], True),
    ]


def test_a_permanent_rejection_fails_at_once_with_its_reason(client, mock_providers, sending):
    tenant = create_company(client)
    slack_channel(client, tenant)
    mock_providers.faults("400")
    queued = ask(client, tenant, "sales").json()
    found = settled_request(client, tenant, queued["id"])
    assert found["status"] == "failed" and attempts_of(found) == [(1, "failed", 400)]
    assert "invalid destination" in found["failure_reason"]
    assert not any(entry["accepted"] for entry in mock_providers.requests())


def test_unroutable_requests_and_foreign_ids_are_refused_and_nothing_is_appended(client, db_url):
    tenant, other = create_company(client, "A"), create_company(client, "B")
    email = create_channel(client, tenant, "email", TEAM_EMAIL)
    foreign_channel = slack_channel(client, other)
    foreign_sms = create_channel(client, other)
    foreign_conversation = post_signed(client, foreign_sms, sms_payload(foreign_sms)).json()["conversation_id"]
    before = count_events(db_url)

    def refused(response, status: int, field: str | None = None) -> None:
        assert response.status_code == status, response.text
        if field is not None:
            assert response.json()["error_code"] == "validation_error"
            assert response.json()["details"][0]["field"] == field

    refused(ask(client, tenant, "legal"), 422, "topic")  # no rule, no default
    refused(ask(client, tenant, "sales"), 422, "topic")  # the default, but the company has no slack channel
    refused(ask(client, tenant, "Sales!"), 422, "topic")
    refused(ask(client, tenant, "x" * 65), 422, "topic")
    refused(ask(client, tenant, "pricing", "   "), 422, "description")
    refused(ask(client, tenant, "pricing", conversation_id=foreign_conversation), 404)
    refused(ask(client, tenant, "pricing", conversation_id=str(UUID(int=7))), 404)
    put = client.put
    refused(put("/v1/routing/topics/sales", json={"channel_id": foreign_channel.id}, headers=tenant.auth), 404)
    refused(put("/v1/routing/topics/sales", json={"channel_id": str(UUID(int=7))}, headers=tenant.auth), 404)
    refused(put("/v1/routing/topics/No%20Way", json={"channel_id": email.id}, headers=tenant.auth), 422, "topic")
    refused(put("/v1/routing/topics/ops", json={"channel_id": email.id, "to": "nobody"}, headers=tenant.auth), 422)
    assert count_events(db_url) == before
    assert client.get(f"/v1/assistance-requests/{UUID(int=7)}", headers=tenant.auth).status_code == 404
    assert client.get("/v1/assistance-requests/nope", headers=tenant.auth).status_code == 404


def test_agents_and_the_bot_may_ask_auditors_may_only_read(client, runtime, work):
    from ledger.tenants import Principal

    tenant = create_company(client)
    slack = slack_channel(client, tenant)
    agent = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
    auditor = client.post("/v1/users", json={"name": "Audrey", "role": "auditor"}, headers=tenant.auth).json()
    as_agent = {"Authorization": f"Bearer {agent['api_key']}"}
    as_auditor = {"Authorization": f"Bearer {auditor['api_key']}"}

    by_agent = client.post("/v1/assistance-requests", json={"topic": "sales", "description": "x"}, headers=as_agent)
    assert by_agent.status_code == 202, by_agent.text
    by_auditor = client.post("/v1/assistance-requests", json={"topic": "sales", "description": "x"}, headers=as_auditor)
    assert by_auditor.status_code == 403 and by_auditor.json()["error_code"] == "forbidden"
    rule = client.put("/v1/routing/topics/sales", json={"channel_id": slack.id}, headers=as_agent)
    assert rule.status_code == 403

    bot = Principal(tenant.company_id, tenant.bot_user_id, "bot")
    by_bot = runtime.ledger.request_assistance(bot, "sales", "The customer wants a person", None, None)
    assert by_bot.created and by_bot.channel_id == slack.id

    work()
    for request_id, actor in ((by_agent.json()["id"], f"user:{agent['id']}"), (by_bot.request_id, bot.actor)):
        read = client.get(
            f"/v1/assistance-requests/{request_id}", params={"min_position": by_bot.position}, headers=as_auditor
        )
        assert read.status_code == 200, read.text
        assert (read.json()["status"], read.json()["requested_by"]) == ("queued", actor)
        assert read.headers["X-Ledger-Position"]


def test_a_request_about_a_conversation_is_in_its_history(client, db_url, work):
    tenant = create_company(client)
    sms = create_channel(client, tenant)
    slack = slack_channel(client, tenant)
    inbound = post_signed(client, sms, sms_payload(sms, body="I want to buy 50 seats")).json()

    queued = ask(client, tenant, "sales", "Wants 50 seats", conversation_id=inbound["conversation_id"]).json()
    work()
    found = client.get(
        f"/v1/assistance-requests/{queued['id']}", params={"min_position": queued["position"]}, headers=tenant.auth
    ).json()
    assert found["conversation_id"] == inbound["conversation_id"] and found["description"] == "Wants 50 seats"

    history = client.get(f"/v1/conversations/{inbound['conversation_id']}/history", headers=tenant.auth).json()
    assert history["verified"]
    [event] = [event for event in history["events"] if event["type"] == "AssistanceRequested"]
    assert event["data"] == {
        "request_id": queued["id"],
        "topic": "sales",
        "description": "Wants 50 seats",
        "channel_id": slack.id,
    }
    assert event["actor"] == f"user:{tenant.admin_user_id}" and event["position"] == queued["position"]
    conversation = client.get(
        f"/v1/conversations/{inbound['conversation_id']}",
        params={"min_position": queued["position"]},
        headers=tenant.auth,
    ).json()
    assert conversation["message_count"] == 1  # the timeline and summary are not messages of it
    assert count_events(db_url, "AssistanceRequest.Requested") == 1


def test_an_idempotency_key_answers_the_first_request(client, db_url):
    tenant = create_company(client)
    slack_channel(client, tenant)
    key = {"Idempotency-Key": "lead-42"}
    first = ask(client, tenant, "sales", headers=key)
    second = ask(client, tenant, "sales", "another description, the same key", headers=key)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["id"] == first.json()["id"] and second.json()["status"] == "queued"
    assert count_events(db_url, "AssistanceRequest.Requested") == 1


def test_the_read_model_rebuilds_to_the_same_rows(client, runtime, db_url, mock_providers, sending):
    tenant = create_company(client)
    slack_channel(client, tenant)
    mock_providers.faults("500")
    ids = [ask(client, tenant, "sales", f"lead {n}").json()["id"] for n in range(3)]
    for request_id in ids:
        settled_request(client, tenant, request_id)
    query = "select * from assistance_requests order by id"
    with psycopg.connect(db_url) as conn:
        incremental = conn.execute(query).fetchall()
    runtime.projector.rebuild(runtime.projector.get("assistance"))
    with psycopg.connect(db_url) as conn:
        assert conn.execute(query).fetchall() == incremental
