"""The intercom channel kind: a whole Intercom conversation (or its notification envelope) signed with
X-Hub-Signature becomes one conversation keyed by Intercom's id; each message appended once; admin
replies are recorded as outbound and never sent."""

import copy
import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from uuid import UUID

import orjson
import psycopg
from hypothesis import given

from tests.support import (
    count_events,
    create_channel,
    create_company,
    queue_message,
    read_conversation,
    settled_message,
)
from tests.test_erasure import erase, stored_payloads
from tests.test_parsers import FUZZ, fuzzed_document, parse_and_normalize, request
from tests.test_sends import CUSTOMER

INBOUND = "Conversation.InboundMessageReceived"
IMPORTED = "Conversation.OutboundMessageImported"
USER = {"type": "user", "id": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": "Ann Lee", "email": "Ann@Example.com"}
ADMIN = {"type": "admin", "id": "814860", "name": "Bo Admin", "email": "bo@acme.test"}
CONVERSATION = {
    "type": "conversation",
    "id": "123456789",
    "created_at": 1763805600,
    "updated_at": 1763806000,
    "waiting_since": None,
    "snoozed_until": None,
    "source": {
        "type": "conversation",
        "id": "403918330",
        "delivered_as": "customer_initiated",
        "subject": "",
        "body": "<p>Hi, my order is late</p>",
        "author": USER,
        "attachments": [],
        "url": None,
        "redacted": False,
    },
    "conversation_message": {
        "type": "conversation_message",
        "id": "403918330",
        "delivered_as": "customer_initiated",
        "subject": "",
        "body": "<p>Hi, my order is late</p>",
        "author": USER,
        "attachments": [],
    },
    "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": USER["id"], "external_id": "u-42"}]},
    "teammates": {"type": "admin.list", "admins": [{"type": "admin", "id": ADMIN["id"]}]},
    "admin_assignee_id": 814860,
    "team_assignee_id": None,
    "open": True,
    "state": "open",
    "read": True,
    "priority": "not_priority",
    "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "17", "name": "shipping"}]},
    "statistics": {"type": "conversation_statistics", "time_to_admin_reply": 100, "count_reopens": 0},
    "sla_applied": None,
    "custom_attributes": {},
    "conversation_parts": {
        "type": "conversation_part.list",
        "conversation_parts": [
            {
                "type": "conversation_part",
                "id": "7001",
                "part_type": "assignment",
                "body": None,
                "created_at": 1763805650,
                "updated_at": 1763805650,
                "notified_at": 1763805650,
                "assigned_to": {"type": "admin", "id": ADMIN["id"]},
                "author": ADMIN,
                "attachments": [],
                "external_id": None,
                "redacted": False,
            },
            {
                "type": "conversation_part",
                "id": "7002",
                "part_type": "comment",
                "body": "<p>Sorry about that!</p><p>It ships today.</p>",
                "created_at": 1763805700,
                "updated_at": 1763805700,
                "notified_at": 1763805700,
                "assigned_to": None,
                "author": ADMIN,
                "attachments": [],
                "external_id": None,
                "redacted": False,
            },
            {
                "type": "conversation_part",
                "id": "7003",
                "part_type": "note",
                "body": "<p>internal: check the warehouse</p>",
                "created_at": 1763805750,
                "author": ADMIN,
                "attachments": [],
            },
            {
                "type": "conversation_part",
                "id": "7004",
                "part_type": "comment",
                "body": "<p>Thanks</p>, see you",
                "created_at": 1763805800,
                "author": USER,
                "attachments": [{"type": "upload", "name": "receipt.png", "url": "https://files.example/receipt.png"}],
            },
        ],
        "total_count": 4,
    },
}


def envelope(conversation: dict, topic: str = "conversation.user.created") -> dict:
    return {
        "type": "notification_event",
        "app_id": "ecahpwf5",
        "id": "notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "created_at": 1763806000,
        "data": {"type": "notification_event_data", "item": conversation},
    }


def intercom_channel(client, tenant):
    return create_channel(client, tenant, kind="intercom", address="ecahpwf5")


def hub_signature(secret: str, raw: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()


def post_intercom(client, channel, document: dict, signature: str | None = None):
    raw = orjson.dumps(document)
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature or hub_signature(channel.secret, raw)}
    return client.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers)


def with_part(conversation: dict, part: dict) -> dict:
    longer = copy.deepcopy(conversation)
    longer["conversation_parts"]["conversation_parts"].append(part)
    longer["conversation_parts"]["total_count"] += 1
    return longer


def messages_appended(db_url: str) -> int:
    return count_events(db_url, INBOUND) + count_events(db_url, IMPORTED)


def test_a_conversation_becomes_messages_in_order_admin_replies_outbound(client, db_url, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)

    response = post_intercom(client, channel, CONVERSATION)

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["deduplicated"] is False
    work()
    timeline = read_conversation(client, tenant, answer["conversation_id"], answer["position"])
    messages = timeline["messages"]
    assert [(m["seq"], m["direction"], m["status"], m["provider_message_id"]) for m in messages] == [
        (1, "inbound", "received", "123456789"),
        (2, "outbound", "sent", "7002"),  # the assignment (no body) and the internal note are skipped
        (3, "inbound", "received", "7004"),
    ]
    assert messages[0]["body"] == "<p>Hi, my order is late</p>"  # the HTML is kept
    assert messages[1]["author_id"] is None  # an Intercom admin, not a ledger user
    assert messages[2]["attachments"] == ["https://files.example/receipt.png"]
    assert [m["sent_at"] for m in messages] == ["2025-11-22T10:00:00Z", "2025-11-22T10:01:40Z", "2025-11-22T10:03:20Z"]
    assert answer["message_id"] == messages[-1]["id"]
    assert timeline["last_message_preview"] == "Thanks, see you"
    assert timeline["owner_id"] is None  # the unassigned queue: the bot cannot answer through Intercom
    assert timeline["participants"] == ["ann@example.com", "ecahpwf5"]
    assert timeline["message_count"] == 3

    contact = client.get(f"/v1/contacts/{answer['contact_id']}", headers=tenant.auth).json()
    assert contact["addresses"] == ["ann@example.com"]
    assert count_events(db_url, "Conversation.OutboundMessageQueued") == 0  # the bot answered nothing
    history = client.get(f"/v1/conversations/{answer['conversation_id']}/history", headers=tenant.auth).json()
    imported = [event for event in history["events"] if event["type"].endswith("OutboundMessageImported")]
    assert [event["data"]["author"] for event in imported] == ["admin:814860"]
    assert history["verified"] is True
    state = client.get(f"/v1/conversations/{answer['conversation_id']}/state?version=99", headers=tenant.auth).json()
    assert [(m["direction"], m["status"], m["sent_at"]) for m in state["messages"]] == [
        (m["direction"], m["status"], m["sent_at"]) for m in messages
    ]


def test_concurrent_deliveries_of_one_conversation_append_it_once(client, db_url):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    barrier = Barrier(8)

    def deliver(_):
        barrier.wait()
        return post_intercom(client, channel, CONVERSATION)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(deliver, range(8)))

    assert sorted(response.status_code for response in responses) == [200] * 7 + [201]
    assert len({response.json()["message_id"] for response in responses}) == 1
    assert messages_appended(db_url) == 3
    assert count_events(db_url, "Receipt.Claimed") == 3


def test_the_notification_envelope_is_the_same_conversation(client, db_url, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)

    first = post_intercom(client, channel, envelope(CONVERSATION))
    repeat = post_intercom(client, channel, CONVERSATION)

    assert first.status_code == 201, first.text
    assert repeat.status_code == 200, repeat.text
    assert repeat.json() == {**first.json(), "position": repeat.json()["position"], "deduplicated": True}
    assert messages_appended(db_url) == 3


def test_a_redelivery_appends_only_the_new_part_then_an_exact_repeat_nothing(client, db_url, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    first = post_intercom(client, channel, envelope(CONVERSATION)).json()
    reply = {
        "type": "conversation_part",
        "id": "7005",
        "part_type": "comment",
        "body": "<p>Tracking number: 1Z999</p>",
        "created_at": 1763805900,
        "author": ADMIN,
        "attachments": [],
    }
    longer = envelope(with_part(CONVERSATION, reply), topic="conversation.admin.replied")

    appended = post_intercom(client, channel, longer)
    repeated = post_intercom(client, channel, longer)

    assert appended.status_code == 201, appended.text
    assert appended.json()["deduplicated"] is False
    assert appended.json()["conversation_id"] == first["conversation_id"]
    assert count_events(db_url, INBOUND) == 2
    assert count_events(db_url, IMPORTED) == 2
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["deduplicated"] is True
    assert repeated.json()["message_id"] == appended.json()["message_id"]
    assert messages_appended(db_url) == 4
    work()
    timeline = read_conversation(client, tenant, first["conversation_id"], repeated.json()["position"])
    assert [m["seq"] for m in timeline["messages"]] == [1, 2, 3, 4]
    assert timeline["messages"][-1]["provider_message_id"] == "7005"
    assert timeline["messages"][-1]["direction"] == "outbound"


def test_a_part_delivered_twice_in_one_conversation_counts_once(client, db_url):
    """A part repeated, or one with the conversation's own id, is one message, not a collision to retry."""
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    part = {
        "type": "conversation_part",
        "id": "7009",
        "part_type": "comment",
        "body": "<p>Again</p>",
        "created_at": 1763805950,
        "author": USER,
    }
    same_id_as_conversation = {**part, "id": CONVERSATION["id"], "body": "<p>Echo</p>"}
    doubled = with_part(with_part(with_part(CONVERSATION, part), part), same_id_as_conversation)
    answered = post_intercom(client, channel, doubled)
    assert answered.status_code == 201, answered.text
    appended = messages_appended(db_url)
    plain = post_intercom(client, channel, with_part(CONVERSATION, part))
    assert plain.status_code == 200 and plain.json()["deduplicated"] is True
    other = create_company(client, "Other")
    assert post_intercom(client, intercom_channel(client, other), with_part(CONVERSATION, part)).status_code == 201
    assert messages_appended(db_url) == 2 * appended  # the doubled delivery appended what the plain one does


def test_a_bad_hub_signature_is_refused_with_its_reason_and_appends_nothing(client, db_url):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    raw = orjson.dumps(CONVERSATION)
    before = count_events(db_url)
    cases = {
        "mismatched": hub_signature("not-the-secret", raw),
        "malformed": "sha256=" + hashlib.sha256(raw).hexdigest(),
        "missing": "",
    }
    for reason, signature in cases.items():
        headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
        response = client.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers)
        assert response.status_code == 401, response.text
        body = response.json()
        assert body["error_code"] == "invalid_signature"
        assert body["details"] == {"reason": reason, "credential": "X-Hub-Signature"}
        assert reason in body["message"] or "does not match" in body["message"]
    assert count_events(db_url) == before


def test_the_dispatcher_never_sends_an_imported_admin_reply(client, db_url, runtime, mock_providers, sending):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    imported = post_intercom(client, channel, CONVERSATION).json()
    sms = create_channel(client, tenant)

    # A message queued after the import settles: the dispatcher has read the outbox past the import.
    queued = queue_message(client, tenant, sms, CUSTOMER, body="a real send").json()
    settled_message(client, tenant, queued["message_id"])

    assert [request["body"] for request in mock_providers.requests()] == ["a real send"]
    with psycopg.connect(db_url) as conn:
        outbox_rows = conn.execute(
            "select count(*) from outbox where conversation_id = %s", [imported["conversation_id"]]
        ).fetchone()[0]
        attempts = conn.execute(
            "select count(*) from ledger_events where originator_id = %s and topic like %s",
            [UUID(imported["conversation_id"]), "%OutboundAttempt%"],
        ).fetchone()[0]
    assert (outbox_rows, attempts) == (0, 0)


def test_the_import_command_serves_callers_without_a_signature(client, runtime, db_url):
    tenant = create_company(client)
    channel_info = intercom_channel(client, tenant)
    channel = runtime.ledger.get_channel(UUID(channel_info.id))

    imported = runtime.ledger.import_intercom(channel, CONVERSATION, f"user:{tenant.admin_user_id}")
    webhook = post_intercom(client, channel_info, envelope(CONVERSATION))

    assert [message.deduplicated for message in imported] == [False, False, False]
    assert webhook.status_code == 200, webhook.text
    assert webhook.json()["message_id"] == imported[-1].message_id
    assert messages_appended(db_url) == 3


def test_a_contact_without_an_email_is_keyed_by_its_intercom_id(client, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    anonymous = copy.deepcopy(CONVERSATION)
    lead = {"type": "lead", "id": "lead-77", "name": None, "email": None}
    anonymous["id"] = "555"
    for message in (anonymous["source"], anonymous["conversation_message"]):
        message["author"] = lead
    anonymous["conversation_parts"]["conversation_parts"][-1]["author"] = lead

    answer = post_intercom(client, channel, anonymous).json()

    work()
    contact = client.get(f"/v1/contacts/{answer['contact_id']}", headers=tenant.auth).json()
    assert contact["addresses"] == ["intercom:lead-77"]
    assert contact["email"] is None


def test_only_the_required_subset_is_needed_and_its_absence_is_a_validation_error(client, db_url):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    minimal = {
        "id": "9",
        "created_at": 1763805600,
        "conversation_message": {"body": "<p>hello</p>", "author": {"id": "u1"}},
    }
    assert post_intercom(client, channel, minimal).status_code == 201

    for broken, field in [
        ({key: value for key, value in minimal.items() if key != "conversation_message"}, "conversation_message"),
        ({**minimal, "created_at": "yesterday"}, "created_at"),
        ({**minimal, "conversation_message": {"body": "x", "author": {"type": "robot", "id": "1"}}}, "author.type"),
        (envelope({"type": "ping", "message": "hello"}), "id"),
    ]:
        response = post_intercom(client, channel, broken)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == field
    assert messages_appended(db_url) == 1


def test_both_directions_are_sealed_and_erased_with_the_contact(client, db_url, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)
    answer = post_intercom(client, channel, CONVERSATION).json()
    assert [text for text in ("order is late", "It ships today") if text in stored_payloads(db_url)] == []

    position = erase(client, tenant, answer["contact_id"])

    work()
    timeline = read_conversation(client, tenant, answer["conversation_id"], position)
    assert {message["body"] for message in timeline["messages"]} == {"[erased]"}


@FUZZ
@given(
    document=fuzzed_document(CONVERSATION)
    | fuzzed_document(CONVERSATION["conversation_message"]).map(
        lambda message: {"id": "1", "created_at": 1763805600, "conversation_message": message}
    )
)
def test_fuzzed_conversations_raise_only_domain_errors(document):
    parse_and_normalize("intercom", request(json.dumps(document).encode(), "application/json"))  # big ints too
