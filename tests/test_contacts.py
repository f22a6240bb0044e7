"""Contact fields extracted from inbound messages, with their provenance; a person's changes
(PATCH /v1/contacts/{id}) win over extractions; the extraction policy is replay-safe."""

from datetime import datetime
from uuid import UUID, uuid4

import psycopg
import pytest

from ledger.contacts import Contact
from ledger.extraction import Extracted, extract_fields
from tests.support import Tenant, count_events, create_channel, create_company, post_signed, sms_payload

INTRODUCTION = "Hi, my name is Alex Smith, my email is Alex@Example.com and my cell is (804) 555-0199"
EXTRACTION_ACTOR = "policy:extraction"


def run_extraction(runtime) -> None:
    """The extraction policy, then the contacts read model, each caught up by the real runner."""
    runtime.projector.catch_up(runtime.projector.get("extraction"))
    runtime.projector.catch_up(runtime.projector.get("contacts"))


def read_contact(client, tenant: Tenant, contact_id: str, runtime) -> dict:
    response = client.get(
        f"/v1/contacts/{contact_id}", params={"min_position": runtime.ledger.head_position()}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return response.json()


def patch(client, tenant_or_headers, contact_id: str, body: dict):
    headers = tenant_or_headers.auth if isinstance(tenant_or_headers, Tenant) else tenant_or_headers
    return client.patch(f"/v1/contacts/{contact_id}", json=body, headers=headers)


def new_user(client, tenant: Tenant, role: str) -> tuple[dict[str, str], str]:
    """The new user's Authorization header, and id."""
    response = client.post("/v1/users", json={"name": role.title(), "role": role}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['api_key']}"}, response.json()["id"]


def contacts_rows(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select * from contacts order by id").fetchall()


def test_fields_extracted_from_a_message_carry_their_provenance(client, runtime, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    written = post_signed(client, channel, sms_payload(channel, sender="+18045551234", body=INTRODUCTION)).json()
    run_extraction(runtime)

    contact = read_contact(client, tenant, written["contact_id"], runtime)
    assert (contact["name"], contact["email"], contact["phone"]) == ("Alex Smith", "Alex@example.com", "+18045550199")
    assert contact["addresses"] == ["+18045551234"] and contact["custom_fields"] == {} and contact["erased"] is False
    methods = {"name": "pattern:my name is", "email": "email-validator", "phone": "phonenumbers"}
    for field, method in methods.items():
        provenance = contact["provenance"][field]
        assert provenance["value"] == contact[field]
        assert provenance["source_message_id"] == written["message_id"]
        assert provenance["method"] == method and provenance["actor"] == EXTRACTION_ACTOR
        assert datetime.fromisoformat(provenance["at"]).tzinfo is not None

    # The log holds the extractions, on the contact's stream, naming the message.
    events = list(runtime.ledger.events.get(UUID(written["contact_id"])))
    extracted = [event for event in events if isinstance(event, Contact.FieldExtracted)]
    assert {(e.field, e.value, e.source_message_id, e.method, e.actor) for e in extracted} == {
        (field, contact[field], written["message_id"], method, EXTRACTION_ACTOR) for field, method in methods.items()
    }
    assert count_events(db_url, "Contact.FieldExtracted") == 3

    # A message that gives nothing records nothing.
    quiet = post_signed(client, channel, sms_payload(channel, sender="+18045551234", body="I'm fine, thanks")).json()
    run_extraction(runtime)
    assert count_events(db_url, "Contact.FieldExtracted") == 3
    assert runtime.ledger.head_position() == quiet["position"]


def test_an_email_is_read_as_its_text(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant, kind="email", address="support@acme.example")
    payload = {
        "from": "Maria <maria@customer.example>",
        "to": channel.address,
        "xillio_id": f"email-{uuid4().hex}",
        "body": "<html><body><p>Hello,</p><p>this is <b>Maria Lopez</b>, call me on +44 20 7946 0958</p></body></html>",
        "attachments": [],
        "timestamp": "2026-11-22T10:00:00Z",
    }
    written = post_signed(client, channel, payload).json()
    run_extraction(runtime)
    contact = read_contact(client, tenant, written["contact_id"], runtime)
    assert (contact["name"], contact["phone"]) == ("Maria Lopez", "+442079460958")
    assert contact["email"] == "maria@customer.example" and contact["provenance"]["email"]["method"] == "address"
    assert contact["provenance"]["name"]["method"] == "pattern:this is"


def test_a_persons_value_wins_over_extractions(client, runtime, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    first = post_signed(client, channel, sms_payload(channel, sender="+18045551234", body="I'm Alex")).json()
    contact_id = first["contact_id"]
    run_extraction(runtime)
    assert read_contact(client, tenant, contact_id, runtime)["name"] == "Alex"

    response = patch(
        client,
        tenant,
        contact_id,
        {"name": "Alexandra Smith", "custom_fields": {"plan": "pro", "vip": True, "seats": 3}},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "Alexandra Smith" and changed["position"] == runtime.ledger.head_position()
    assert changed["custom_fields"] == {"plan": "pro", "vip": True, "seats": 3}
    person = {"source_message_id": None, "method": "person", "actor": f"user:{tenant.admin_user_id}"}
    assert changed["provenance"]["name"] == {**changed["provenance"]["name"], **person, "value": "Alexandra Smith"}
    assert changed["provenance"]["custom_fields.plan"] == {**changed["provenance"]["custom_fields.plan"], **person}

    # A later extraction is recorded, but the person's value stays.
    extractions = count_events(db_url, "Contact.FieldExtracted")
    later = sms_payload(channel, sender="+18045551234", body="Hello again, my name is Bob Jones")
    later_message = post_signed(client, channel, later).json()["message_id"]
    run_extraction(runtime)
    assert count_events(db_url, "Contact.FieldExtracted") == extractions + 1
    stream = list(runtime.ledger.events.get(UUID(contact_id)))
    assert [(e.value, e.source_message_id) for e in stream if isinstance(e, Contact.FieldExtracted)][-1] == (
        "Bob Jones",
        later_message,
    )
    contact = read_contact(client, tenant, contact_id, runtime)
    assert contact["name"] == "Alexandra Smith" and contact["provenance"]["name"]["method"] == "person"
    assert {key: value for key, value in changed.items() if key != "position"} == contact  # one shape

    # null deletes a custom field and keeps the others; an agent may change a contact.
    agent, agent_id = new_user(client, tenant, "agent")
    response = patch(
        client, agent, contact_id, {"custom_fields": {"plan": None, "tier": 2.5}, "phone": "(804) 555-0123"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["custom_fields"] == {"vip": True, "seats": 3, "tier": 2.5}
    assert response.json()["phone"] == "+18045550123"
    assert "custom_fields.plan" not in response.json()["provenance"]
    runtime.projector.catch_up(runtime.projector.get("contacts"))
    contact = read_contact(client, tenant, contact_id, runtime)
    assert contact["custom_fields"] == {"vip": True, "seats": 3, "tier": 2.5} and contact["phone"] == "+18045550123"
    assert contact["provenance"]["phone"]["actor"] == f"user:{agent_id}"
    assert "custom_fields.plan" not in contact["provenance"]

    # A change that changes nothing appends nothing.
    head = runtime.ledger.head_position()
    response = patch(
        client, tenant, contact_id, {"name": "Alexandra Smith", "custom_fields": {"plan": None, "seats": 3}}
    )
    assert response.status_code == 200 and response.json()["position"] == head
    assert runtime.ledger.head_position() == head

    # A person clearing a field: it stays empty whatever is extracted later.
    assert patch(client, tenant, contact_id, {"email": None}).json()["email"] is None
    post_signed(client, channel, sms_payload(channel, sender="+18045551234", body="write to bob@example.com"))
    run_extraction(runtime)
    contact = read_contact(client, tenant, contact_id, runtime)
    assert contact["email"] is None and contact["provenance"]["email"]["method"] == "person"


def test_patch_checks_the_caller_and_the_values(client, runtime, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    contact_id = post_signed(client, channel, sms_payload(channel)).json()["contact_id"]
    other = create_company(client, name="Other")
    auditor, _ = new_user(client, tenant, "auditor")
    events = count_events(db_url)

    assert patch(client, auditor, contact_id, {"name": "Eve"}).status_code == 403
    assert patch(client, other, contact_id, {"name": "Eve"}).status_code == 404  # another company's contact
    assert patch(client, tenant, str(uuid4()), {"name": "Eve"}).status_code == 404
    assert patch(client, tenant, "not-a-uuid", {"name": "Eve"}).status_code == 404
    refused = [
        ({"email": "not an email"}, "email"),
        ({"email": "ann@example"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"name": "   "}, "name"),
        ({"name": "Ann\nSmith"}, "name"),
        ({"custom_fields": {"plan": {"nested": 1}}}, None),
        ({"custom_fields": {"seats": 2**60}}, "custom_fields.seats"),
        ({"custom_fields": {"": "empty key"}}, None),
        ({"custom_fields": None}, None),
    ]
    for body, field in refused:
        response = patch(client, tenant, contact_id, body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error_code"] == "validation_error"
        if field is not None:
            assert field in [detail["field"] for detail in response.json()["details"]], response.text
    assert count_events(db_url) == events  # nothing appended

    response = patch(client, tenant, contact_id, {"email": "Ann@Example.COM"})
    assert response.status_code == 200 and response.json()["email"] == "Ann@example.com"


def test_extraction_is_replay_safe(client, runtime, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    bodies = [INTRODUCTION, "this is Sam, text me at 804-555-0142", "I am Kim Lee", "nothing to see"]
    for index, body in enumerate(bodies):
        post_signed(client, channel, sms_payload(channel, sender=f"+1804555{index:04d}", body=body))
    last = post_signed(client, channel, sms_payload(channel, sender="+18045559999", body="my name is Jo")).json()
    run_extraction(runtime)
    assert patch(client, tenant, last["contact_id"], {"name": "Joanna"}).status_code == 200
    run_extraction(runtime)
    rows, events, head = contacts_rows(db_url), count_events(db_url), runtime.ledger.head_position()
    assert count_events(db_url, "Contact.FieldExtracted") == 3 + 2 + 1 + 1

    # The policy replayed from the log's start: every message is seen again, nothing is recorded again.
    assert runtime.projector.rebuild(runtime.projector.get("extraction")) == events
    assert (count_events(db_url), runtime.ledger.head_position()) == (events, head)
    # The read model rebuilt from the log is the one kept incrementally.
    runtime.projector.rebuild(runtime.projector.get("contacts"))
    assert contacts_rows(db_url) == rows
    assert read_contact(client, tenant, last["contact_id"], runtime)["name"] == "Joanna"


def test_a_contact_snapshot_keeps_the_fields(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    contact_id = UUID(post_signed(client, channel, sms_payload(channel, body=INTRODUCTION)).json()["contact_id"])
    run_extraction(runtime)
    patch(client, tenant, str(contact_id), {"custom_fields": {"plan": "pro"}})
    before = runtime.ledger.repository.get(contact_id)
    runtime.ledger.take_snapshot(contact_id)
    after = runtime.ledger.repository.get(contact_id)
    assert (after.provenance, after.custom_fields, after.extracted_from) == (
        before.provenance,
        before.custom_fields,
        before.extracted_from,
    )
    state = {"addresses": ["+18045551234"]}  # a snapshot of the first version of Contact
    Contact.upcast_v1_v2(state)
    assert state == {"addresses": ["+18045551234"], "provenance": {}, "custom_fields": {}, "extracted_from": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            INTRODUCTION,
            [
                Extracted("name", "Alex Smith", "pattern:my name is"),
                Extracted("email", "Alex@example.com", "email-validator"),
                Extracted("phone", "+18045550199", "phonenumbers"),
            ],
        ),
        ("I'm Alex", [Extracted("name", "Alex", "pattern:i'm")]),
        ("hi I’m Zoë O'Brien-Lee.", [Extracted("name", "Zoë O'Brien-Lee", "pattern:i'm")]),
        ("I am Kim Lee and I need help", [Extracted("name", "Kim Lee", "pattern:i am")]),
        ("Hello, this is Sam from Acme", [Extracted("name", "Sam", "pattern:this is")]),
        ("MY NAME IS Jo", [Extracted("name", "Jo", "pattern:my name is")]),
        ("I'm fine, my name is Ann", [Extracted("name", "Ann", "pattern:my name is")]),
        (
            "mail me: first.last+tag@Sub.Example.org.",
            [Extracted("email", "first.last+tag@sub.example.org", "email-validator")],
        ),
        ("call +44 20 7946 0958 please", [Extracted("phone", "+442079460958", "phonenumbers")]),
    ],
)
def test_extract_fields_finds(text, expected):
    assert extract_fields(text, "US") == expected


@pytest.mark.parametrize(
    "text",
    [
        "I'm fine",
        "I'm Good thanks",
        "I'm here",
        "I am Looking for a refund",
        "I'm interested in the offer",
        "This is Urgent",
        "this is great",
        "I am OK",
        "my name is alex",  # a name is capitalized
        "This is Very Important News",
        "this is Acme Support Team Desk",  # more capitalized words than a name has
        "mail me at ann@example or @handle",
        "message 151, order 12345678",
        "call 555-1234",  # no area code: no number anyone can dial
    ],
)
def test_extract_fields_ignores(text):
    assert extract_fields(text, "US") == []


def test_extract_fields_stays_fast_on_hostile_text():
    hostile = "a." * 50_000 + "@" + "b-" * 50_000 + "I am " * 20_000 + "1 " * 50_000
    assert extract_fields(hostile, "US") == []
