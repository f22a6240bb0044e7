"""Exactly-once ingestion (guarantee 1), grouping, ordering (guarantee 5) and each channel kind."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import orjson
import psycopg
from twilio.request_validator import RequestValidator

from tests.backlog import write_backlog
from tests.support import count_events, create_channel, create_company, post_signed, read_conversation, sms_payload


def test_fifty_concurrent_deliveries_append_one_message(client, db_url, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    payload = orjson.dumps(sms_payload(channel, body="only once"))
    barrier = Barrier(50)

    def deliver(_):
        barrier.wait()
        return post_signed(client, channel, payload)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(deliver, range(50)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 49 + [201]
    bodies = [response.json() for response in responses]
    assert len({body["message_id"] for body in bodies}) == 1
    assert len({body["conversation_id"] for body in bodies}) == 1
    assert sorted(body["deduplicated"] for body in bodies) == [False] + [True] * 49
    assert count_events(db_url, "Conversation.InboundMessageReceived") == 1
    assert count_events(db_url, "Receipt.Claimed") == 1

    work()
    position = max(body["position"] for body in bodies)
    timeline = read_conversation(client, tenant, bodies[0]["conversation_id"], position)
    assert [message["body"] for message in timeline["messages"]] == ["only once"]
    assert timeline["message_count"] == 1


def test_concurrent_messages_to_one_conversation_get_gap_free_seq(client, db_url, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    payloads = [sms_payload(channel, body=f"message {index}") for index in range(40)]
    barrier = Barrier(40)

    def deliver(payload):
        barrier.wait()
        return post_signed(client, channel, payload)

    with ThreadPoolExecutor(40) as pool:
        responses = list(pool.map(deliver, payloads))
    assert {response.status_code for response in responses} == {201}

    work()
    position = max(response.json()["position"] for response in responses)
    conversation_id = responses[0].json()["conversation_id"]
    timeline = read_conversation(client, tenant, conversation_id, position)
    assert [message["seq"] for message in timeline["messages"]] == list(range(1, 41))
    assert sorted(message["body"] for message in timeline["messages"]) == sorted(p["body"] for p in payloads)


def test_grouping_by_channel_and_normalized_sender(client):
    tenant = create_company(client)
    sms = create_channel(client, tenant, address="+18045550100")
    other_sms = create_channel(client, tenant, address="+18045550199")

    def conversation_of(channel, sender):
        response = post_signed(client, channel, sms_payload(channel, sender=sender))
        assert response.status_code == 201, response.text
        return response.json()["conversation_id"], response.json()["contact_id"]

    first, contact = conversation_of(sms, "+1 804-555-1234")
    assert conversation_of(sms, "+18045551234") == (first, contact)
    assert conversation_of(sms, "(804) 555-1234") == (first, contact)
    other_sender, other_contact = conversation_of(sms, "+18045559876")
    assert other_sender != first and other_contact != contact
    other_channel, same_contact = conversation_of(other_sms, "+18045551234")
    assert other_channel != first and same_contact == contact


def test_provider_timestamp_is_kept_but_never_reorders(client, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    late = post_signed(client, channel, sms_payload(channel, body="sent later", timestamp="2026-11-22T12:00:00Z"))
    early = post_signed(client, channel, sms_payload(channel, body="sent earlier", timestamp="2026-11-22T09:00:00Z"))
    work()
    timeline = read_conversation(client, tenant, late.json()["conversation_id"], early.json()["position"])
    assert [(m["seq"], m["body"]) for m in timeline["messages"]] == [(1, "sent later"), (2, "sent earlier")]
    assert [m["sent_at"] for m in timeline["messages"]] == ["2026-11-22T12:00:00Z", "2026-11-22T09:00:00Z"]


def test_mms_keeps_attachments(client, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    urls = ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"]
    response = post_signed(client, channel, sms_payload(channel, type="mms", body="", attachments=urls))
    assert response.status_code == 201, response.text
    work()
    timeline = read_conversation(client, tenant, response.json()["conversation_id"], response.json()["position"])
    assert timeline["messages"][0]["attachments"] == urls
    assert timeline["messages"][0]["type"] == "mms"


def test_email_keeps_html_and_lowercases_addresses(client, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant, kind="email", address="Support@Acme.example")
    assert channel.address == "support@acme.example"
    html = "<html><body><p>Hi <b>there</b>,</p><style>p{}</style><p>my order is late</p></body></html>"
    payload = {
        "from": "Jane Doe <Jane.Doe@Example.COM>",
        "to": "SUPPORT@acme.example",
        "xillio_id": "x-1",
        "body": html,
        "attachments": [],
        "timestamp": "2026-11-22T10:00:00Z",
    }
    response = post_signed(client, channel, payload)
    assert response.status_code == 201, response.text
    work()
    body = response.json()
    timeline = read_conversation(client, tenant, body["conversation_id"], body["position"])
    assert timeline["messages"][0]["body"] == html
    assert timeline["last_message_preview"] == "Hi there, my order is late"  # natural text (html-text)
    assert timeline["participants"] == ["jane.doe@example.com", "support@acme.example"]
    contact = client.get(f"/v1/contacts/{body['contact_id']}", headers=tenant.auth).json()
    assert contact["email"] == "jane.doe@example.com"
    assert contact["provenance"]["email"]["method"] == "address"


def test_whatsapp_is_received_on_the_channel_address(client, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant, kind="whatsapp", address="+44 20 7946 0000")
    response = post_signed(client, channel, {"from": "+44 7700 900123", "text": "hola", "channel_message_id": "wa-1"})
    assert response.status_code == 201, response.text
    duplicate = post_signed(client, channel, {"from": "+447700900123", "text": "hola", "channel_message_id": "wa-1"})
    assert duplicate.status_code == 200 and duplicate.json()["message_id"] == response.json()["message_id"]
    work()
    timeline = read_conversation(client, tenant, response.json()["conversation_id"], response.json()["position"])
    assert timeline["participants"] == ["+447700900123", "+442079460000"]
    assert timeline["messages"][0]["sent_at"] is None


def twilio_form(channel, sid: str, **fields) -> dict:
    return {
        "MessageSid": sid,
        "AccountSid": "AC123",
        "From": "+18045551234",
        "To": channel.address,
        "Body": "via twilio",
        "NumMedia": "0",
        **fields,
    }


def post_twilio(client, channel, url_base: str, form: dict, token: str):
    url = f"{url_base}/v1/webhooks/{channel.id}"
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(url, data=form, headers={"X-Twilio-Signature": signature})


def test_twilio_signature_is_checked_as_twilio_computes_it(client, db_url, work):
    tenant = create_company(client)
    auth_token = "twilio-auth-token-0123456789abcdef"
    channel = create_channel(
        client,
        tenant,
        kind="twilio",
        address="+18045550100",
        webhook_secret=auth_token,
        credentials={"account_sid": "AC" + "0" * 32},
    )
    base = str(client.base_url).rstrip("/")
    form = twilio_form(
        channel, "SM1", NumMedia="2", MediaUrl0="https://api.twilio.com/m/0", MediaUrl1="https://api.twilio.com/m/1"
    )

    response = post_twilio(client, channel, base, form, auth_token)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    assert post_twilio(client, channel, base, form, auth_token).status_code == 200

    forged = post_twilio(client, channel, base, form, "not-the-auth-token")
    assert forged.status_code == 401 and forged.json()["error_code"] == "invalid_signature"
    tampered = post_twilio(client, channel, base, twilio_form(channel, "SM2"), auth_token)
    assert tampered.status_code == 201
    replayed_with_other_body = client.post(
        f"/v1/webhooks/{channel.id}",
        data=twilio_form(channel, "SM3"),
        headers={
            "X-Twilio-Signature": RequestValidator(auth_token).compute_signature(
                f"{base}/v1/webhooks/{channel.id}", form
            )
        },
    )
    assert replayed_with_other_body.status_code == 401
    assert count_events(db_url, "InboundMessageReceived") == 2

    work()
    position = int(tampered.headers["X-Ledger-Position"])
    conversations = client.get("/v1/conversations", params={"min_position": position}, headers=tenant.auth).json()
    conversation_id = conversations["items"][0]["id"]
    timeline = read_conversation(client, tenant, conversation_id)
    assert timeline["messages"][0]["attachments"] == ["https://api.twilio.com/m/0", "https://api.twilio.com/m/1"]
    assert timeline["messages"][0]["type"] == "mms"


def test_long_conversations_are_snapshotted_and_keep_counting(client, runtime, db_url, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    write_backlog(runtime.ledger, tenant.company_id, channel.id, tenant.bot_user_id, conversations=1, messages_each=150)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from ledger_snapshots").fetchone()[0] >= 1
    response = post_signed(client, channel, sms_payload(channel, sender="+18045550000", body="number 151"))
    assert response.status_code == 201
    work()
    timeline = read_conversation(client, tenant, response.json()["conversation_id"], response.json()["position"])
    assert [m["seq"] for m in timeline["messages"]] == list(range(1, 152))
    assert timeline["messages"][-1]["body"] == "number 151"


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/companies", "/v1/webhooks/{channel_id}", "/v1/conversations", "/health", "/ready"} <= set(paths)
    assert client.get("/health").json() == {"status": "ok"}
