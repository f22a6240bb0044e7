"""The seed dialects, called with company keys: Hatch's examples as written and Sailer's flow, answered in
their shapes, appending exactly the events /v1 appends for the same thing."""

import httpx
import psycopg
import pytest

from tests.support import create_channel, create_company, post_signed

HATCH_SMS = "+12016661234"
HATCH_EMAIL = "user@usehatchapp.com"
TIMESTAMP = "2024-11-01T14:00:00Z"
# Hatch's curl script, exactly.
HATCH_EXAMPLES = [
    (
        "/api/messages/sms",
        {
            "from": "+12016661234",
            "to": "+18045551234",
            "type": "sms",
            "body": "Hello! This is a test SMS message.",
            "attachments": None,
            "timestamp": TIMESTAMP,
        },
    ),
    (
        "/api/messages/sms",
        {
            "from": "+12016661234",
            "to": "+18045551234",
            "type": "mms",
            "body": "Hello! This is a test SMS message.",
            "attachments": ["https://example.com/image.jpg"],
            "timestamp": TIMESTAMP,
        },
    ),
    (
        "/api/messages/email",
        {
            "from": "user@usehatchapp.com",
            "to": "contact@gmail.com",
            "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
            "attachments": ["https://example.com/document.pdf"],
            "timestamp": TIMESTAMP,
        },
    ),
    (
        "/api/webhooks/sms",
        {
            "from": "+18045551234",
            "to": "+12016661234",
            "type": "sms",
            "messaging_provider_id": "message-1",
            "body": "This is an incoming SMS message",
            "attachments": None,
            "timestamp": TIMESTAMP,
        },
    ),
    (
        "/api/webhooks/sms",
        {
            "from": "+18045551234",
            "to": "+12016661234",
            "type": "mms",
            "messaging_provider_id": "message-2",
            "body": "This is an incoming SMS message",
            "attachments": ["https://example.com/received-image.jpg"],
            "timestamp": TIMESTAMP,
        },
    ),
    (
        "/api/webhooks/email",
        {
            "from": "contact@gmail.com",
            "to": "user@usehatchapp.com",
            "xillio_id": "message-3",
            "body": "<html><body>This is an incoming email with <b>HTML</b> content</body></html>",
            "attachments": ["https://example.com/received-document.pdf"],
            "timestamp": TIMESTAMP,
        },
    ),
]
MESSAGE_FIELDS = {"id", "conversation_id", "from", "to", "type", "body", "attachments", "timestamp", "status"}
MESSAGE_FIELDS |= {"direction"}


def hatch_company(client: httpx.Client):
    tenant = create_company(client)
    channels = {
        kind: create_channel(client, tenant, kind=kind, address=address)
        for kind, address in (("sms", HATCH_SMS), ("email", HATCH_EMAIL), ("whatsapp", "+12016660000"))
    }
    return tenant, channels


def post_hatch_examples(client: httpx.Client, headers: dict[str, str]) -> list[dict]:
    """Each example once (all 201), in order; answers their bodies."""
    answers = []
    for path, payload in HATCH_EXAMPLES:
        response = client.post(path, json=payload, headers=headers)
        assert response.status_code == 201, (path, response.text)
        answers.append(response.json())
    return answers


def check_hatch_examples(client: httpx.Client, headers: dict[str, str], work) -> None:
    """Hatch's script as written: answers in Hatch's shapes, repeats deduplicated, then its two reads."""
    answers = post_hatch_examples(client, headers)
    for answer in answers:
        assert set(answer) >= MESSAGE_FIELDS
    sms, mms, email, inbound_sms, inbound_mms, inbound_email = answers
    assert sms == {
        **sms,
        "from": HATCH_SMS,
        "to": "+18045551234",
        "type": "sms",
        "body": "Hello! This is a test SMS message.",
        "attachments": [],
        "timestamp": TIMESTAMP,
        "status": "queued",
        "direction": "outbound",
        "deduplicated": False,
    }
    assert (mms["type"], mms["attachments"]) == ("mms", ["https://example.com/image.jpg"])
    assert (email["from"], email["to"], email["type"]) == (HATCH_EMAIL, "contact@gmail.com", "email")
    assert inbound_sms == {
        **inbound_sms,
        "from": "+18045551234",
        "to": HATCH_SMS,
        "type": "sms",
        "status": "received",
        "direction": "inbound",
        "timestamp": TIMESTAMP,
    }
    assert inbound_mms["attachments"] == ["https://example.com/received-image.jpg"]
    assert (inbound_email["type"], inbound_email["from"]) == ("email", "contact@gmail.com")
    # one conversation per (channel, contact): the sms ones share one, the emails another
    assert len({sms["conversation_id"], mms["conversation_id"], inbound_sms["conversation_id"]}) == 1
    assert email["conversation_id"] == inbound_email["conversation_id"] != sms["conversation_id"]

    for path, payload in HATCH_EXAMPLES[3:]:  # provider retries: the same ids, nothing appended
        again = client.post(path, json=payload, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["deduplicated"] is True
    assert again.json()["id"] == inbound_email["id"]

    work()
    position = max(answer["position"] for answer in answers)
    listed = client.get("/api/conversations", params={"min_position": position}, headers=headers)
    assert listed.status_code == 200, listed.text
    conversations = {item["id"]: item for item in listed.json()["conversations"]}
    assert set(conversations) == {1, 2}
    assert conversations[1]["conversation_id"] == sms["conversation_id"]
    assert conversations[1]["participants"] == ["+18045551234", HATCH_SMS]
    assert conversations[1]["message_count"] == 4
    assert conversations[1]["last_message_preview"] == "This is an incoming SMS message"
    assert conversations[2]["participants"] == ["contact@gmail.com", HATCH_EMAIL]

    timeline = client.get("/api/conversations/1/messages", params={"min_position": position}, headers=headers)
    assert timeline.status_code == 200, timeline.text
    messages = timeline.json()["messages"]
    assert [m["id"] for m in messages] == [a["id"] for a in (sms, mms, inbound_sms, inbound_mms)]
    assert [(m["direction"], m["type"], m["from"], m["to"]) for m in messages] == [
        ("outbound", "sms", HATCH_SMS, "+18045551234"),
        ("outbound", "mms", HATCH_SMS, "+18045551234"),
        ("inbound", "sms", "+18045551234", HATCH_SMS),
        ("inbound", "mms", "+18045551234", HATCH_SMS),
    ]
    assert messages[3]["attachments"] == ["https://example.com/received-image.jpg"]
    emails = client.get(f"/api/conversations/{email['conversation_id']}/messages", headers=headers).json()
    assert [(m["type"], m["direction"]) for m in emails["messages"]] == [("email", "outbound"), ("email", "inbound")]
    assert emails["conversation"]["id"] == 2


def test_hatch_examples_as_written_with_a_company_key(client, work):
    tenant, _ = hatch_company(client)
    check_hatch_examples(client, tenant.auth, work)


def events_between(db_url: str, after: int, upto: int) -> list[tuple[str, str]]:
    """(topic's class, actor kind) of the events appended in (after, upto], in log order."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """select topic, convert_from(state, 'UTF8') from ledger_events
               where notification_id > %s and notification_id <= %s order by notification_id""",
            [after, upto],
        ).fetchall()
    return [(topic.split(":")[-1], actor_kind(state)) for topic, state in rows]


def actor_kind(state: str) -> str:
    marker = '"actor":"'
    start = state.find(marker)
    return "" if start < 0 else state[start + len(marker) :].split(":", 1)[0]


def head(runtime) -> int:
    return runtime.ledger.head_position()


def test_hatch_appends_what_v1_appends(client, runtime, db_url):
    hatch_tenant, _ = hatch_company(client)
    v1_tenant, v1_channels = hatch_company(client)
    payload = HATCH_EXAMPLES[3][1]

    before = head(runtime)
    through_hatch = client.post("/api/webhooks/sms", json=payload, headers=hatch_tenant.auth).json()
    hatch_events = events_between(db_url, before, through_hatch["position"])
    before = head(runtime)
    through_v1 = post_signed(client, v1_channels["sms"], payload).json()
    v1_events = events_between(db_url, before, through_v1["position"])
    assert hatch_events == v1_events
    assert ("Conversation.InboundMessageReceived", "provider") in hatch_events

    history = client.get(f"/v1/conversations/{through_hatch['conversation_id']}/history", headers=hatch_tenant.auth)
    v1_history = client.get(f"/v1/conversations/{through_v1['conversation_id']}/history", headers=v1_tenant.auth)
    assert [e["type"] for e in history.json()["events"]] == [e["type"] for e in v1_history.json()["events"]]
    assert history.json()["verified"] is True

    send = HATCH_EXAMPLES[0][1]
    before = head(runtime)
    sent_by_hatch = client.post("/api/messages/sms", json=send, headers=hatch_tenant.auth).json()
    hatch_sends = events_between(db_url, before, sent_by_hatch["position"])
    before = head(runtime)
    v1_body = {"channel_id": v1_channels["sms"].id, "to": send["to"], "body": send["body"], "type": "sms"}
    sent_by_v1 = client.post("/v1/messages", json=v1_body, headers=v1_tenant.auth).json()
    assert hatch_sends == events_between(db_url, before, sent_by_v1["position"])
    assert hatch_sends == [("Conversation.OutboundMessageQueued", "user")]  # the conversation existed already

    # the two ways in share one dedup: the provider's id, per channel
    same_again = post_signed(client, v1_channels["sms"], payload)
    assert same_again.status_code == 200 and same_again.json()["message_id"] == through_v1["message_id"]


def test_hatch_refuses_what_it_cannot_route(client, db_url):
    tenant, _ = hatch_company(client)
    events = count_all(db_url)
    unknown_from = {**HATCH_EXAMPLES[0][1], "from": "+12025550000"}
    refused = client.post("/api/messages/sms", json=unknown_from, headers=tenant.auth)
    assert refused.status_code == 422
    assert refused.json()["details"][0]["field"] == "from"
    unknown_to = {**HATCH_EXAMPLES[5][1], "to": "other@usehatchapp.com"}
    refused = client.post("/api/webhooks/email", json=unknown_to, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["details"][0]["field"] == "to"
    missing_id = {key: value for key, value in HATCH_EXAMPLES[3][1].items() if key != "messaging_provider_id"}
    refused = client.post("/api/webhooks/sms", json=missing_id, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["error_code"] == "validation_error"
    nul = {**HATCH_EXAMPLES[3][1], "body": "a\u0000b"}
    assert client.post("/api/webhooks/sms", json=nul, headers=tenant.auth).status_code == 422
    assert client.post("/api/webhooks/sms", json=HATCH_EXAMPLES[3][1]).status_code == 401  # no demo: a key
    bad_key = {"Authorization": "Bearer nope"}
    assert client.post("/api/messages/sms", json=HATCH_EXAMPLES[0][1], headers=bad_key).status_code == 401
    assert count_all(db_url) == events
    assert client.get("/api/conversations/7/messages", headers=tenant.auth).status_code == 404
    for reference in ("nope", "²", "99999999999"):
        assert client.get(f"/api/conversations/{reference}/messages", headers=tenant.auth).status_code == 404


def test_hatch_inbound_needs_an_admin_and_stays_in_its_company(client):
    tenant, _ = hatch_company(client)
    other, _ = hatch_company(client)
    agent = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
    agent_auth = {"Authorization": f"Bearer {agent['api_key']}"}
    assert client.post("/api/webhooks/sms", json=HATCH_EXAMPLES[3][1], headers=agent_auth).status_code == 403
    assert client.post("/api/messages/sms", json=HATCH_EXAMPLES[0][1], headers=agent_auth).status_code == 201
    inbound = client.post("/api/webhooks/sms", json=HATCH_EXAMPLES[3][1], headers=other.auth).json()
    theirs = client.get(f"/api/conversations/{inbound['conversation_id']}/messages", headers=tenant.auth)
    assert theirs.status_code == 404


def count_all(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select count(*) from ledger_events").fetchone()[0]


# -- Sailer ---------------------------------------------------------------------------------------------


@pytest.fixture
def sailer(client):
    tenant = create_company(client)
    whatsapp = create_channel(client, tenant, kind="whatsapp", address="+12016660000")
    agent = client.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
    return tenant, whatsapp, agent


def inbound(tenant, channel, provider_id: str = "wamid-1", text: str = "Hi, I need help") -> dict:
    return {
        "company_id": tenant.company_id,
        "channel_id": channel.id,
        "from": "+5511999999999",
        "text": text,
        "channel_message_id": provider_id,
    }


def test_sailer_flow(client, work, sailer, db_url):
    tenant, whatsapp, agent = sailer
    received = client.post("/webhooks/inbound", json=inbound(tenant, whatsapp), headers=tenant.auth)
    assert received.status_code == 201, received.text
    ids = received.json()
    assert ids["deduplicated"] is False
    again = client.post("/webhooks/inbound", json=inbound(tenant, whatsapp), headers=tenant.auth)
    assert again.status_code == 200
    assert {**again.json(), "position": 0} == {**ids, "deduplicated": True, "position": 0}
    conversation_id = ids["conversation_id"]

    work()
    read = client.get(
        f"/conversations/{conversation_id}", params={"min_position": ids["position"]}, headers=tenant.auth
    )
    assert read.status_code == 200, read.text
    conversation = read.json()
    assert conversation == {
        **conversation,
        "id": conversation_id,
        "company_id": tenant.company_id,
        "channel_id": whatsapp.id,
        "contact_id": ids["contact_id"],
        "owner_id": tenant.bot_user_id,
        "status": "open",
    }
    [message] = conversation["messages"]
    assert message == {**message, "direction": "inbound", "author_id": None, "text": "Hi, I need help"}
    assert set(message) == {"id", "direction", "author_id", "text", "created_at", "status"}

    reply = {"author_id": agent["id"], "text": "On it!"}
    headers = {**tenant.auth, "Idempotency-Key": "reply-1"}
    replied = client.post(f"/conversations/{conversation_id}/messages", json=reply, headers=headers)
    assert replied.status_code == 201, replied.text
    assert replied.json() == {**replied.json(), "author_id": agent["id"], "status": "queued", "text": "On it!"}
    work()
    changed = {**reply, "text": "Changed my mind"}
    repeated = client.post(f"/conversations/{conversation_id}/messages", json=changed, headers=headers)
    assert repeated.status_code == 200 and repeated.json()["id"] == replied.json()["id"]
    assert repeated.json()["text"] == "On it!"  # the reply as it was queued

    moved = client.post(
        f"/conversations/{conversation_id}/transfer", json={"new_owner_id": agent["id"]}, headers=tenant.auth
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == agent["id"]

    work()
    position = moved.json()["position"]
    listed = client.get(
        f"/companies/{tenant.company_id}/conversations",
        params={"owner_id": agent["id"], "channel_id": whatsapp.id, "min_position": position},
        headers=tenant.auth,
    )
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["conversations"]
    assert summary == {**summary, "id": conversation_id, "owner_id": agent["id"], "message_count": 2}
    by_bot = client.get(
        f"/companies/{tenant.company_id}/conversations", params={"owner_id": tenant.bot_user_id}, headers=tenant.auth
    )
    assert by_bot.json()["conversations"] == []
    timeline = client.get(f"/conversations/{conversation_id}", headers=tenant.auth).json()["messages"]
    assert [(m["direction"], m["author_id"]) for m in timeline] == [("inbound", None), ("outbound", agent["id"])]

    contact_id = ids["contact_id"]
    fields = client.post(f"/contacts/{contact_id}/custom-fields", json={"plan": "pro", "seats": 3}, headers=tenant.auth)
    assert fields.status_code == 200, fields.text
    assert fields.json()["custom_fields"] == {"plan": "pro", "seats": 3}
    fields = client.post(f"/contacts/{contact_id}/custom-fields", json={"plan": None}, headers=tenant.auth)
    assert fields.json()["custom_fields"] == {"seats": 3}
    work()
    contact = client.get(
        f"/v1/contacts/{contact_id}", params={"min_position": fields.json()["position"]}, headers=tenant.auth
    )
    assert contact.json()["custom_fields"] == {"seats": 3}

    history = client.get(f"/v1/conversations/{conversation_id}/history", headers=tenant.auth).json()["events"]
    queued = [e for e in history if e["type"].endswith("OutboundMessageQueued")]
    assert [e["actor"] for e in queued] == [f"user:{agent['id']}"]  # the author, as through /v1 with their key
    transferred = [e for e in history if e["type"].endswith("OwnerTransferred")]
    assert [e["actor"] for e in transferred] == [f"user:{tenant.admin_user_id}"]


def test_sailer_refusals(client, sailer, db_url):
    tenant, whatsapp, agent = sailer
    other = create_company(client, name="Other")
    sms = create_channel(client, tenant)
    events = count_all(db_url)
    assert client.post("/webhooks/inbound", json=inbound(tenant, whatsapp), headers=other.auth).status_code == 404
    on_sms = client.post("/webhooks/inbound", json=inbound(tenant, sms), headers=tenant.auth)
    assert on_sms.status_code == 422 and on_sms.json()["details"][0]["field"] == "channel_id"
    not_an_id = {**inbound(tenant, whatsapp), "channel_id": "whatsapp-1"}  # a placeholder only in demo mode
    assert client.post("/webhooks/inbound", json=not_an_id, headers=tenant.auth).status_code == 404
    assert client.get(f"/companies/{other.company_id}/conversations", headers=tenant.auth).status_code == 404
    filtered = client.get(
        f"/companies/{tenant.company_id}/conversations", params={"owner_id": "x"}, headers=tenant.auth
    )
    assert filtered.status_code == 422
    assert client.post("/companies", json={"name": "X"}, headers=tenant.auth).status_code == 401
    assert count_all(db_url) == events

    conversation_id = client.post("/webhooks/inbound", json=inbound(tenant, whatsapp), headers=tenant.auth).json()[
        "conversation_id"
    ]
    agent_auth = {"Authorization": f"Bearer {agent['api_key']}"}
    url = f"/conversations/{conversation_id}/messages"
    assert (
        client.post(url, json={"author_id": tenant.admin_user_id, "text": "x"}, headers=agent_auth).status_code == 403
    )
    assert (
        client.post(url, json={"author_id": other.admin_user_id, "text": "x"}, headers=tenant.auth).status_code == 404
    )
    assert client.post(url, json={"author_id": tenant.bot_user_id, "text": "x"}, headers=tenant.auth).status_code == 422
    assert client.post(url, json={"author_id": agent["id"], "text": "mine"}, headers=agent_auth).status_code == 201
    assert client.post(url, json={"author_id": agent["id"], "text": "x"}, headers=other.auth).status_code == 404


def test_sailer_creates_companies_with_the_operator_token(client):
    from tests.conftest import OPERATOR_TOKEN

    created = client.post("/companies", json={"name": "Sail"}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert created.status_code == 201, created.text
    company = created.json()
    assert set(company) == {"id", "name", "api_key", "admin_user_id", "bot_user_id"}
    users = client.get("/v1/users", headers={"Authorization": f"Bearer {company['api_key']}"})
    assert users.status_code == 200
    assert client.post("/companies", json={"name": "Sail"}).status_code == 401


def test_each_dialect_has_its_own_tag(client):
    document = client.get("/openapi.json").json()
    tags: dict[str, set[str]] = {}
    for path, methods in document["paths"].items():
        for operation in methods.values():
            for tag in operation["tags"]:
                tags.setdefault(tag, set()).add(path)
    assert tags["hatch"] == {
        "/api/messages/sms",
        "/api/messages/email",
        "/api/webhooks/sms",
        "/api/webhooks/email",
        "/api/conversations",
        "/api/conversations/{number}/messages",
    }
    assert tags["sailer"] == {
        "/companies",
        "/webhooks/inbound",
        "/conversations/{conversation_id}",
        "/conversations/{conversation_id}/messages",
        "/conversations/{conversation_id}/transfer",
        "/companies/{company_id}/conversations",
        "/contacts/{contact_id}/custom-fields",
    }
    schemas = document["components"]["schemas"]
    assert set(schemas["HatchMessage"]["properties"]) == MESSAGE_FIELDS
    assert {"id", "company_id", "channel_id", "contact_id", "owner_id", "status", "messages"} <= set(
        schemas["SailerConversation"]["properties"]
    )


def test_a_hatch_send_repeated_with_its_idempotency_key_answers_the_message_as_queued(client, work, db_url):
    tenant, _ = hatch_company(client)
    headers = {**tenant.auth, "Idempotency-Key": "retry-1"}
    first = {"from": HATCH_SMS, "to": "+18045550001", "type": "sms", "body": "first body", "attachments": None}
    second = {
        **first,
        "to": "+18045550002",
        "type": "mms",
        "body": "second body",
        "attachments": ["https://example.com/a.jpg"],
    }
    queued = client.post("/api/messages/sms", json=first, headers=headers)
    assert queued.status_code == 201, queued.text
    work()
    replayed = client.post("/api/messages/sms", json=second, headers=headers)
    assert replayed.status_code == 200, replayed.text
    answer = replayed.json()
    assert answer["id"] == queued.json()["id"] and answer["deduplicated"] is True
    assert (answer["to"], answer["body"], answer["type"], answer["attachments"]) == (
        "+18045550001",
        "first body",
        "sms",
        [],
    )
    with psycopg.connect(db_url) as conn:
        queued_events = "select count(*) from ledger_events where topic like '%OutboundMessageQueued'"
        assert conn.execute(queued_events).fetchone()[0] == 1
