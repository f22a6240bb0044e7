"""Exactly-once projection (guarantee 3), read-your-writes (guarantee 4) and coalesced wake-ups."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import psycopg
import pytest

from api.runtime import Runtime
from tests.backlog import write_backlog
from tests.conftest import run_worker
from tests.support import count_events, create_channel, create_company, post_signed, sms_payload
from workers.process import sweep_forever

READ_MODEL_QUERIES = {
    "summaries": "select id, channel_id, contact_id, owner_id, status, participants, message_count, last_message_at, "
    "last_message_preview, created_at, updated_at, number from conversation_summaries order by id",
    "timeline": "select * from timeline_messages order by conversation_id, seq",
    "contacts": "select * from contacts order by id",
    "dedup": "select * from provider_messages order by company_id, channel_id, provider_message_id",
}


def read_models(db_url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(db_url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in READ_MODEL_QUERIES.items()}


def tracked_positions(db_url: str) -> dict[str, int]:
    """Of every projection and policy these tests run (not the bot: see LEDGER_POLICIES in conftest)."""
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute("select name, position from projection_tracking where name <> 'bot'").fetchall())


def backlog(client, runtime: Runtime, conversations: int, messages_each: int) -> int:
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    return write_backlog(
        runtime.ledger, tenant.company_id, channel.id, tenant.bot_user_id, conversations, messages_each
    )


def worker_env(settings, **overrides) -> dict[str, str]:
    env = dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        LEDGER_QUEUE=settings.queue_name,
        LEDGER_SECRET_KEY=settings.secret_key,
        LEDGER_ADMIN_TOKEN=settings.admin_token,
        LEDGER_DATA_DIR=str(settings.data_dir),
        LEDGER_POLICIES=settings.policies,
    )
    return {**env, **overrides}


def assert_applied_exactly_once(db_url: str, head: int) -> None:
    models = read_models(db_url)
    assert set(tracked_positions(db_url).values()) == {head}
    messages_in_log = count_events(db_url, "Conversation.InboundMessageReceived")
    assert len(models["timeline"]) == messages_in_log
    assert sum(row[6] for row in models["summaries"]) == messages_in_log
    assert len(models["summaries"]) == count_events(db_url, "Conversation.Started")
    assert len(models["contacts"]) == count_events(db_url, "Contact.Created")
    assert len(models["dedup"]) == count_events(db_url, "Receipt.Claimed")


def test_two_worker_processes_apply_every_event_exactly_once(client, runtime, settings, db_url):
    head = backlog(client, runtime, conversations=20, messages_each=30)
    env = worker_env(settings, LEDGER_PROJECTION_BATCH_SIZE="7")
    command = [sys.executable, "-m", "api.cli", "worker", "--burst"]
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr.decode()[-2000:]
    assert_applied_exactly_once(db_url, head)


def test_worker_killed_mid_batch_resumes_to_what_a_rebuild_gives(client, runtime, settings, db_url):
    head = backlog(client, runtime, conversations=40, messages_each=50)
    env = worker_env(settings, LEDGER_PROJECTION_BATCH_SIZE="5", LEDGER_SWEEP_SECONDS="0.05")
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        assert runtime.projector.wait_for(["timeline"], 50, timeout=60) is not None
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert min(tracked_positions(db_url).values()) < head, "the worker finished before it was killed"

    runtime.projector.catch_up_all()  # the restarted worker
    assert_applied_exactly_once(db_url, head)
    resumed = read_models(db_url)
    for projection in runtime.projector.projections.values():
        runtime.projector.rebuild(projection)
    assert read_models(db_url) == resumed


def test_replayed_wake_up_applies_nothing_twice(client, runtime, db_url, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    response = post_signed(client, channel, sms_payload(channel))
    work()
    before = read_models(db_url)
    for key in runtime.wakeup.pending_keys.values():
        runtime.redis.delete(key)
    runtime.wakeup.notify()
    work()
    assert read_models(db_url) == before
    assert_applied_exactly_once(db_url, response.json()["position"])


def test_min_position_waits_for_the_projection_and_answers_503_when_it_lags(client, runtime, settings):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    written = post_signed(client, channel, sms_payload(channel)).json()
    settings.read_wait_seconds = 0.2
    lagging = client.get(
        f"/v1/conversations/{written['conversation_id']}",
        params={"min_position": written["position"]},
        headers=tenant.auth,
    )
    assert lagging.status_code == 503
    assert lagging.json()["error_code"] == "projection_lagging"

    settings.read_wait_seconds = 5
    with ThreadPoolExecutor(1) as pool:
        read = pool.submit(
            client.get,
            f"/v1/conversations/{written['conversation_id']}",
            params={"min_position": written["position"]},
            headers=tenant.auth,
        )
        run_worker(runtime)
        response = read.result()
    assert response.status_code == 200
    assert int(response.headers["X-Ledger-Position"]) >= written["position"]
    assert response.json()["message_count"] == 1


def test_a_burst_of_writes_enqueues_one_job_per_projection(client, runtime, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    work()
    responses = [post_signed(client, channel, sms_payload(channel)) for _ in range(25)]
    assert {response.status_code for response in responses} == {201}
    assert runtime.queue.count == len(runtime.projector.projections)
    work()
    head = max(response.json()["position"] for response in responses)
    assert set(runtime.projector.positions().values()) == {head}


def test_conversations_are_numbered_per_company_in_log_order(client, work):
    first, second = create_company(client), create_company(client)
    first_channel, second_channel = create_channel(client, first), create_channel(client, second)
    started = []
    for channel, sender in (
        (first_channel, "+18045551111"),
        (second_channel, "+18045551111"),
        (first_channel, "+18045552222"),
        (first_channel, "+18045551111"),
        (first_channel, "+18045553333"),
    ):
        answer = post_signed(client, channel, sms_payload(channel, sender=sender)).json()
        started.append((channel, answer["conversation_id"], answer["position"]))
    work()
    numbers = {}
    for tenant in (first, second):
        items = client.get("/v1/conversations", headers=tenant.auth).json()["items"]
        numbers |= {item["id"]: item["number"] for item in items}
    assert [numbers[conversation_id] for _, conversation_id, _ in started] == [1, 1, 2, 1, 3]
    one = client.get(f"/v1/conversations/{started[2][1]}", headers=first.auth).json()
    assert one["number"] == 2


@pytest.mark.parametrize("name", ["summaries", "timeline", "contacts", "dedup"])
def test_rebuild_equals_incremental(client, runtime, db_url, work, name):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    for sender in ("+18045551111", "+18045552222", "+18045551111"):
        assert post_signed(client, channel, sms_payload(channel, sender=sender)).status_code == 201
    work()
    incremental = read_models(db_url)[name]
    assert incremental
    runtime.projector.rebuild(runtime.projector.get(name))
    assert read_models(db_url)[name] == incremental


def test_a_rebuild_never_blanks_the_read_model_while_writes_go_on(client, runtime, db_url):
    """The rebuild fills a shadow copy and swaps it in: a reader polling meanwhile never sees a count
    or the tracked position go down, and writes made during the rebuild are in the result."""
    head = backlog(client, runtime, conversations=20, messages_each=15)
    runtime.projector.batch_size = 40  # many batches, so the reader polls in between
    timeline = runtime.projector.get("timeline")
    runtime.projector.catch_up(timeline)
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while not stop.is_set():
                seen.append(
                    conn.execute(
                        """select (select count(*) from timeline_messages),
                                  (select position from projection_tracking where name = 'timeline')"""
                    ).fetchone()
                )

    def write_and_project() -> None:
        tenant = create_company(client, "Meanwhile")
        channel = create_channel(client, tenant)
        for n in range(10):
            post_signed(client, channel, sms_payload(channel, body=f"during the rebuild {n}"))
            runtime.projector.catch_up(timeline)

    threads = [threading.Thread(target=read), threading.Thread(target=write_and_project)]
    for thread in threads:
        thread.start()
    try:
        read_events = runtime.projector.rebuild(timeline)
    finally:
        threads[1].join()
        runtime.projector.catch_up(timeline)
        stop.set()
        threads[0].join()
    assert read_events >= head
    counts, positions = [count for count, _ in seen], [position for _, position in seen]
    assert len(seen) > 10 and min(counts) >= 300
    assert counts == sorted(counts) and positions == sorted(positions)
    assert read_models(db_url)["timeline"][-1] is not None
    assert len(read_models(db_url)["timeline"]) == count_events(db_url, "Conversation.InboundMessageReceived")


# A NUL in a text column is refused by psycopg as the statement is sent; a NUL escape in a jsonb column by
# the server, which a pipelined batch hears of only at a later statement.
POISONS = {"text": ("written before NUL checks\x00", []), "jsonb": ("fine", ["https://example.com/\x00"])}


@pytest.mark.parametrize("poison", POISONS)
def test_an_event_a_projection_cannot_apply_stops_only_that_projection(client, runtime, db_url, poison):
    from ledger.messaging import Conversation

    tenant = create_company(client)
    channel = create_channel(client, tenant)
    good = post_signed(client, channel, sms_payload(channel)).json()
    poisoned = runtime.ledger.repository.get(UUID(good["conversation_id"]))
    body, attachments = POISONS[poison]
    poisoned.receive_inbound(uuid4(), "legacy-1", "sms", body, "", attachments, None, "system")
    head = runtime.ledger.commit(poisoned)
    assert isinstance(poisoned, Conversation)

    stop = threading.Event()
    sweeper = threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop))
    sweeper.start()
    try:
        assert runtime.projector.wait_for(["contacts", "dedup", "summaries"], head, timeout=10) == head
        assert sweeper.is_alive()
    finally:
        stop.set()
        sweeper.join()
    positions = runtime.projector.positions()
    assert positions["timeline"] < head
    # Pipelined batches report a statement's error late; the error still names the event that caused it.
    error = runtime.projector.readiness(60)["projections"]["timeline"]["error"]
    assert f"stopped at position {head} " in error


def test_a_handler_that_raises_a_bug_stops_only_its_projection_visibly(client, runtime, monkeypatch):
    from eventsourcing.utils import get_topic

    from ledger.messaging import Conversation

    def broken_handler(cursor, event, position):
        raise TypeError("a bug in a handler")

    summaries = runtime.projector.get("summaries")
    monkeypatch.setitem(summaries._handlers, get_topic(Conversation.InboundMessageReceived), broken_handler)
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    head = post_signed(client, channel, sms_payload(channel)).json()["position"]

    run_worker(runtime)  # the wake-up job of the broken projection fails; the worker goes on
    stop = threading.Event()
    sweeper = threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop))
    sweeper.start()
    try:
        assert runtime.projector.wait_for(["contacts", "dedup", "timeline"], head, timeout=10) == head
        assert sweeper.is_alive()
    finally:
        stop.set()
        sweeper.join()
    ready = client.get("/ready").json()["projections"]
    assert ready["summaries"]["position"] < head
    assert "TypeError" in ready["summaries"]["error"]
    assert ready["timeline"]["error"] is None


def test_lagging_reads_do_not_hold_up_writes(client, runtime, settings):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    settings.read_wait_seconds = 3
    unprojected = post_signed(client, channel, sms_payload(channel)).json()["position"]  # no worker runs here
    with ThreadPoolExecutor(60) as pool:
        reads = [
            pool.submit(client.get, "/v1/conversations", params={"min_position": unprojected}, headers=tenant.auth)
            for _ in range(60)
        ]
        written = post_signed(client, channel, sms_payload(channel))
        still_waiting = sum(not read.done() for read in reads)
        assert written.status_code == 201
        assert still_waiting == 60
        assert {read.result().status_code for read in reads} == {503}


def test_ledger_rebuild_command_rebuilds_to_the_same_read_model(client, settings, db_url, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    for _ in range(3):
        assert post_signed(client, channel, sms_payload(channel)).status_code == 201
    work()
    before = read_models(db_url)
    ledger = [sys.executable, "-m", "api.cli", "rebuild"]
    done = subprocess.run([*ledger, "timeline"], env=worker_env(settings), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert read_models(db_url) == before
    everything = subprocess.run([*ledger, "--all"], env=worker_env(settings), capture_output=True, text=True)
    assert everything.returncode == 0, everything.stderr
    assert "rebuilt inbox" in everything.stdout and "rebuilt contacts" in everything.stdout
    assert read_models(db_url) == before
    unknown = subprocess.run([*ledger, "nonsense"], env=worker_env(settings), capture_output=True, text=True)
    assert unknown.returncode != 0 and "timeline" in unknown.stderr


def test_a_min_position_beyond_the_log_head_is_refused_at_once(client, runtime, settings):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    written = post_signed(client, channel, sms_payload(channel)).json()
    started = time.monotonic()
    beyond = client.get(
        f"/v1/conversations/{written['conversation_id']}",
        params={"min_position": written["position"] + 1_000_000},
        headers=tenant.auth,
    )
    assert time.monotonic() - started < settings.read_wait_seconds / 2
    assert beyond.status_code == 422, beyond.text
    assert beyond.json()["details"][0]["field"] == "min_position"
