"""A seeded random workload over HTTP: signed webhooks and concurrent duplicates of them, sends through
faulty providers, status callbacks (ours, and the Twilio mock's racing the dispatcher), transfers,
closes, reopens, read markers, contact changes, availability, fields extracted from messages. Then every
read model, rebuilt from the log while a reader polls its counts, must equal row for row the one the
workers built as the events came."""

import itertools
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest

from tests.support import (
    ChannelInfo,
    Tenant,
    count_events,
    create_channel,
    create_company,
    poll,
    post_signed,
    queue_message,
    read_message,
    settled_message,
    sms_payload,
)
from tests.test_inbox import create_user
from tests.test_status_callbacks import post_status, twilio_channel

OPERATIONS = 250
NAMES = ("Alex Smith", "Maria Garcia", "Chen Okafor", "Priya Larsen")
PHONES = [f"+1804555{n:04d}" for n in range(2000, 2024)]
EMAILS = [f"customer{n}@example.com" for n in range(12)]
SENT_AT = datetime(2026, 11, 22, 10, tzinfo=UTC)


@dataclass
class Workload:
    """What the workload did: where it chooses its next step from, and what the outcome is checked against."""

    client: httpx.Client
    admin: Tenant
    agents: list[Tenant]
    channels: list[ChannelInfo]  # the last one, Twilio, only sends
    rng: random.Random
    webhooks: list[tuple[ChannelInfo, bytes, str]] = field(default_factory=list)  # (channel, body, message id)
    conversations: dict[str, ChannelInfo] = field(default_factory=dict)
    contacts: dict[str, None] = field(default_factory=dict)
    sends: dict[str, ChannelInfo] = field(default_factory=dict)  # message id: its channel
    reported: dict[str, list[str]] = field(default_factory=dict)  # message id: the statuses we posted
    unsent_reports: list[tuple[str, list[str]]] = field(default_factory=list)  # held until the message is sent
    keys: dict[str, str] = field(default_factory=dict)  # Idempotency-Key: message id
    serial: itertools.count = field(default_factory=itertools.count)

    def received(self, channel: ChannelInfo, body: bytes, answer: dict) -> None:
        self.webhooks.append((channel, body, answer["message_id"]))
        self.remember(channel, answer)

    def remember(self, channel: ChannelInfo, answer: dict) -> None:
        self.conversations[answer["conversation_id"]] = channel
        self.contacts.update({answer["contact_id"]: None} if "contact_id" in answer else {})

    def handler(self) -> Tenant:
        return self.rng.choice([self.admin, *self.agents])

    def conversation(self) -> str:
        return self.rng.choice(list(self.conversations))


def expect(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in codes, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


# -- the operations -----------------------------------------------------------------------------


def new_webhook(w: Workload) -> tuple[ChannelInfo, bytes]:
    """A provider's webhook on a random inbound channel, its text now and then one to extract fields from."""
    channel, n = w.rng.choice(w.channels[:-1]), next(w.serial)
    text = w.rng.choice(
        [f"Hello, question {n}", f"Hi, my name is {w.rng.choice(NAMES)}", f"write to me at someone{n}@example.org"]
        + [f"my cell is (804) 555-{w.rng.randint(3000, 3999)}", "I'm fine, thanks"]
    )
    sent_at, provider_id = (SENT_AT + timedelta(seconds=w.rng.randint(0, 3600))).isoformat(), f"wl-{n}"
    payloads = {
        "sms": lambda: sms_payload(channel, w.rng.choice(PHONES), text, messaging_provider_id=provider_id),
        "whatsapp": lambda: {"from": w.rng.choice(PHONES), "text": text, "channel_message_id": provider_id},
        "email": lambda: (
            {"from": w.rng.choice(EMAILS), "to": channel.address, "xillio_id": provider_id}
            | {"body": f"<p>{text}</p>", "attachments": None}
        ),
    }
    return channel, orjson.dumps(payloads[channel.kind]() | {"timestamp": sent_at})


def inbound(w: Workload) -> None:
    channel, body = new_webhook(w)
    w.received(channel, body, expect(post_signed(w.client, channel, body), 201))


def concurrent_duplicates(w: Workload) -> None:
    """An earlier webhook, or a new one, delivered several times at once: one message in all."""
    earlier = w.rng.choice(w.webhooks) if w.rng.random() < 0.7 else None
    channel, body = earlier[:2] if earlier else new_webhook(w)
    copies = w.rng.randint(3, 8)
    with ThreadPoolExecutor(copies) as pool:
        answers = [expect(r, 200, 201) for r in pool.map(lambda _: post_signed(w.client, channel, body), range(copies))]
    created = [answer for answer in answers if not answer["deduplicated"]]
    assert len(created) == (0 if earlier else 1) and len({a["message_id"] for a in answers}) == 1, answers
    if not earlier:
        w.received(channel, body, created[0])


def reply(w: Workload) -> None:
    conversation_id = w.conversation()
    path, body = f"/v1/conversations/{conversation_id}/messages", {"body": f"reply {next(w.serial)}"}
    response = w.client.post(path, json=body, headers=w.handler().auth)
    if response.status_code == 409 and response.json()["details"][0]["issue"] == "contact_erased":
        return  # the address went with the contact's personal data: only POST /v1/messages reaches them again
    w.sends[expect(response, 202)["message_id"]] = w.conversations[conversation_id]


def send_to_address(w: Workload) -> None:
    """A send that may start its conversation, on any channel; now and then with a key used before."""
    channel = w.rng.choice(w.channels)
    to = w.rng.choice(EMAILS if channel.kind == "email" else PHONES)
    key = f"key-{w.rng.randrange(8)}" if w.rng.random() < 0.4 else None
    answer = expect(queue_message(w.client, w.admin, channel, to, f"news {next(w.serial)}", key), 200, 202)
    if key in w.keys:
        assert answer["message_id"] == w.keys[key], "a key used before answers with its first message"
        return
    w.keys.update({key: answer["message_id"]} if key else {})
    w.sends[answer["message_id"]] = channel
    w.remember(channel, answer)


def status_callbacks(w: Workload) -> None:
    """delivered / read / sent in any order, one of them repeated."""
    if w.sends:
        message_id = w.rng.choice(list(w.sends))
        statuses = w.rng.choices(["delivered", "read", "sent"], k=w.rng.randint(1, 3))
        statuses.append(w.rng.choice(statuses))
        if not report(w, message_id, statuses):
            w.unsent_reports.append((message_id, statuses))


def report(w: Workload, message_id: str, statuses: list[str]) -> bool:
    """Posts the statuses once the message has its provider id (it was sent); whether it had."""
    channel = w.sends[message_id]
    if channel.kind == "twilio":  # its callbacks come from the mock
        return True
    provider_id = read_message(w.client, w.admin, message_id).get("provider_message_id")
    if provider_id is None:
        return False
    for status in statuses:
        expect(post_status(w.client, channel, {"provider_message_id": provider_id, "status": status}), 200)
    w.reported.setdefault(message_id, []).extend(statuses)
    return True


def transfer(w: Workload) -> None:
    to = w.rng.choice([*(agent.admin_user_id for agent in w.agents), w.admin.admin_user_id, None])
    path, body = f"/v1/conversations/{w.conversation()}/transfer", {"to_user_id": to, "reason": "workload"}
    expect(w.client.post(path, json=body, headers=w.handler().auth), 200)


def close_or_reopen(w: Workload) -> None:
    path = f"/v1/conversations/{w.conversation()}/{w.rng.choice(['close', 'reopen'])}"
    expect(w.client.post(path, headers=w.handler().auth), 200)


def mark_read(w: Workload) -> None:
    expect(w.client.post(f"/v1/conversations/{w.conversation()}/read", headers=w.handler().auth), 200)


def patch_contact(w: Workload) -> None:
    tier = w.rng.choice([1, 2, None])  # None deletes the custom field
    changes = w.rng.choice([{"name": w.rng.choice(NAMES)}, {"custom_fields": {"tier": tier}}])
    path = f"/v1/contacts/{w.rng.choice(list(w.contacts))}"
    expect(w.client.patch(path, json=changes, headers=w.handler().auth), 200)


def availability(w: Workload) -> None:
    """An agent coming (the assignment policy drains the unassigned queue to them) or going."""
    path, body = f"/v1/users/{w.rng.choice(w.agents).admin_user_id}/availability", {"available": w.rng.random() < 0.6}
    expect(w.client.put(path, json=body, headers=w.admin.auth), 200)


def erase(w: Workload) -> None:
    """Crypto-shredding: the contact's data reads "[erased]" from here on, in both builds alike."""
    path = f"/v1/contacts/{w.rng.choice(list(w.contacts))}/personal-data"
    expect(w.client.delete(path, headers=w.admin.auth), 200)


# One line an operation: (weight, operation).
OPERATIONS_TABLE: list[tuple[int, Callable[[Workload], None]]] = [
    (28, inbound),
    (8, concurrent_duplicates),
    (10, reply),
    (8, send_to_address),
    (10, status_callbacks),
    (6, transfer),
    (6, close_or_reopen),
    (6, mark_read),
    (5, patch_contact),
    (3, availability),
    (2, erase),
]


def run_workload(w: Workload, operations: int) -> None:
    for _ in range(5):
        inbound(w)
    for _ in range(operations):
        [(_, operation)] = w.rng.choices(OPERATIONS_TABLE, [weight for weight, _ in OPERATIONS_TABLE])
        operation(w)


def settle(w: Workload, runtime, mock_providers) -> None:
    """Every send ended, every callback posted, and every projection and policy at the log's head."""
    for message_id in w.sends:
        settled_message(w.client, w.admin, message_id, timeout=40)
    for message_id, statuses in w.unsent_reports:
        report(w, message_id, statuses)  # a failed message has no provider id: nothing to report
    accepted = sum(1 for r in mock_providers.requests() if r["provider"] == "twilio" and r["accepted"])
    poll(lambda: len(mock_providers.http.get("/_callbacks").json()) == 2 * accepted, what="the Twilio callbacks")

    def caught_up() -> bool:
        head = runtime.ledger.head_position()
        return all(position == head for position in runtime.projector.positions().values())

    poll(caught_up, timeout=30, what="every projection reaching the log's head")


# -- the read models ----------------------------------------------------------------------------


def snapshot(db_url: str, tables: list[str]) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row of every table, all columns, ordered by all of them."""
    rows = {}
    with psycopg.connect(db_url) as conn:
        for table in tables:
            query = """select column_name from information_schema.columns
                       where table_schema = 'public' and table_name = %s order by column_name"""
            columns = [name for (name,) in conn.execute(query, [table])]
            listed = ", ".join(columns)
            rows[table] = (columns, conn.execute(f"select {listed} from {table} order by {listed}").fetchall())
    return rows


def assert_same_rows(incremental: dict, rebuilt: dict) -> None:
    for table, (columns, rows) in incremental.items():
        rebuilt_columns, rebuilt_rows = rebuilt[table]
        differences = [
            {"row": dict(zip(columns, before, strict=True))}
            | {name: (a, b) for name, a, b in zip(columns, before, after, strict=True) if a != b}
            for before, after in zip(rows, rebuilt_rows, strict=False)
            if before != after
        ]
        assert (rebuilt_columns, len(rebuilt_rows)) == (columns, len(rows)) and not differences, (
            f"{table}: {len(rows)} rows built incrementally, {len(rebuilt_rows)} rebuilt; "
            f"first differences (incremental, rebuilt): {differences[:2]}"
        )


def counts(w: Workload, conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    """What a reader sees: every read model table's row count, every tracked position, and over HTTP the
    conversation list, its message counts, the inboxes' open counts and one timeline."""
    seen = {table: conn.execute(f"select count(*) from {table}").fetchone()[0] for table in tables}
    seen |= dict(conn.execute("select 'position of ' || name, position from projection_tracking").fetchall())
    listed = expect(w.client.get("/v1/conversations", params={"limit": 200}, headers=w.admin.auth), 200)["items"]
    seen |= {"conversations": len(listed), "messages": sum(item["message_count"] for item in listed)}
    inboxes = ["/v1/inbox/unassigned"] + [f"/v1/users/{agent.admin_user_id}/inbox" for agent in w.agents]
    seen |= {path: expect(w.client.get(path, headers=w.admin.auth), 200)["open_count"] for path in inboxes}
    first = expect(w.client.get(f"/v1/conversations/{next(iter(w.conversations))}", headers=w.admin.auth), 200)
    return seen | {"first timeline": len(first["messages"])}


def rebuild_while_reading(w: Workload, runtime, db_url: str, tables: list[str]) -> list[dict[str, int]]:
    """Rebuilds every read model in small batches, a reader polling meanwhile; what the reader saw."""
    runtime.projector.batch_size = 50
    seen, failures, stop = [], [], threading.Event()

    def read() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.append(counts(w, conn, tables))
                except Exception as failure:  # noqa: BLE001 -- raised again by the test's thread
                    failures.append(failure)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for projection in runtime.projector.projections.values():
            if projection.tables:
                runtime.projector.rebuild(projection)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not failures, failures[:3]
    return seen


# -- the test -----------------------------------------------------------------------------------


@pytest.fixture
def workload(client, runtime, mock_providers, request) -> Workload:
    admin = create_company(client)
    inbound_channels = [("sms", "+18045550100"), ("whatsapp", "+18045550101"), ("email", "support@acme.example")]
    channels = [create_channel(client, admin, kind, address) for kind, address in inbound_channels]
    agents = [create_user(client, admin, "agent", name) for name in ("Ann", "Bob", "Cy")]
    rng = random.Random(request.param)
    faults = ["429", "500", "timeout", "400"]  # a timeout: accepted, answered 1.5 s late (the send timeout is 1 s)
    mock_providers.random_faults(0.3, faults, seed=rng.randrange(1000), retry_after=1, delay_seconds=1.5)
    callbacks = {"statuses": ["sent", "delivered"], "shuffle": True, "delay_seconds": 0, "seed": rng.randrange(1000)}
    mock_providers.http.put("/_callbacks", json=callbacks).raise_for_status()  # racing the dispatcher's record
    return Workload(client, admin, agents, [*channels, twilio_channel(client, admin)], rng)


@pytest.mark.parametrize("workload", [7, 2026], indirect=True)
def test_a_random_workload_rebuilds_to_the_read_models_built_incrementally(
    workload, runtime, db_url, mock_providers, sending
):
    run_workload(workload, OPERATIONS)
    settle(workload, runtime, mock_providers)
    assert_the_workload_landed(workload, db_url)

    read_models = [projection for projection in runtime.projector.projections.values() if projection.tables]
    tables = [table for projection in read_models for table in projection.tables]
    assert {"timeline", "summaries", "contacts", "dedup", "inbox", "outbox"} <= {p.name for p in read_models}
    incremental = snapshot(db_url, tables)
    seen = rebuild_while_reading(workload, runtime, db_url, tables)
    assert len(seen) > 3, "the reader did not poll during the rebuild"
    for metric in seen[0]:
        values = [sample[metric] for sample in seen]
        assert values == sorted(values), f"{metric} went down during the rebuild: {values}"
    assert_same_rows(incremental, snapshot(db_url, tables))

    # Replayed, the policies record nothing twice, and nothing new.
    head = runtime.ledger.head_position()
    runtime.projector.rebuild(runtime.projector.get("extraction"))
    runtime.projector.rebuild(runtime.projector.get("assignment"))
    assert runtime.ledger.head_position() == head


def assert_the_workload_landed(w: Workload, db_url: str) -> None:
    """Each webhook is one timeline message, duplicates added none; every send ended; statuses folded."""
    assert count_events(db_url, "Conversation.InboundMessageReceived") == len(w.webhooks)
    assert count_events(db_url, "Contact.FieldExtracted") > 0, "nothing was extracted"
    assert count_events(db_url, "Contact.PersonalDataErased") > 0, "nobody was erased"
    with psycopg.connect(db_url) as conn:
        messages = conn.execute("select id::text, direction, status, failure_reason from timeline_messages").fetchall()
        assert conn.execute("select count(*) from outbox").fetchone()[0] == 0
    inbound_ids = sorted(message_id for message_id, direction, *_ in messages if direction == "inbound")
    assert inbound_ids == sorted(message_id for *_, message_id in w.webhooks)
    outbound = {message_id: ended for message_id, direction, *ended in messages if direction == "outbound"}
    assert outbound.keys() == w.sends.keys()
    for message_id, channel in w.sends.items():
        status, failure_reason = outbound[message_id]
        posted = w.reported.get(message_id, []) + (["sent", "delivered"] if channel.kind == "twilio" else ["sent"])
        expected = "read" if "read" in posted else "delivered" if "delivered" in posted else "sent"
        failed = status == "failed" and failure_reason and message_id not in w.reported
        assert status == expected or failed, (message_id, channel.kind, posted, status)
