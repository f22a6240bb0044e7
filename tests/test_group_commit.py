"""Group commit: concurrent appends share one transaction, each checked on its own. A refused append
(a duplicate, a version taken by an append before it in the group) fails alone; the others commit;
and an append is answered only once its group committed, so a crash loses no acknowledged write."""

import os
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from api.embedded import free_port
from ledger.group_commit import Append
from ledger.receipts import Receipt
from ledger.recorder import VersionConflict
from tests.support import create_channel, create_company, poll, post_signed, sms_payload
from tests.test_projections import worker_env


def claim(runtime, company_id: str, provider_message_id: str) -> Append:
    """An append of one receipt: its id is its key, so a second claim of a key collides."""
    receipt = Receipt.claim(
        company_id, "channel", provider_message_id, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "system"
    )
    return Append([runtime.ledger.mapper.to_stored_event(event) for event in receipt.collect_events()])


def test_a_group_with_a_duplicate_and_a_conflicting_append_commits_the_others(runtime):
    company_id = str(uuid.uuid4())
    runtime.ledger.recorder.insert_events(claim(runtime, company_id, "earlier").events)
    first, duplicate, conflicting, last = (
        claim(runtime, company_id, key) for key in ("new", "earlier", "new", "another")
    )

    runtime.ledger.recorder.commit_group([first, duplicate, conflicting, last])

    assert isinstance(duplicate.error, VersionConflict) and isinstance(conflicting.error, VersionConflict)
    assert first.error is None and last.error is None
    assert first.positions[0] < last.positions[0]
    stored = runtime.ledger.recorder.select_notifications(start=None, limit=100)
    assert [n.id for n in stored if n.originator_id == first.events[0].originator_id] == first.positions
    assert [n.id for n in stored if n.originator_id == last.events[0].originator_id] == last.positions


def test_concurrent_appends_share_transactions_and_each_gets_its_own_position(runtime):
    company_id = str(uuid.uuid4())
    threads = 24
    start = threading.Barrier(threads)

    def append(n: int) -> list[int]:
        events = claim(runtime, company_id, f"concurrent-{n}").events
        start.wait()
        return runtime.ledger.recorder.insert_events(events)

    before = runtime.ledger.recorder.group_commit.groups
    with ThreadPoolExecutor(threads) as pool:
        positions = [position for result in pool.map(append, range(threads)) for position in result]

    assert len(set(positions)) == threads
    assert runtime.ledger.head_position() >= max(positions)
    assert runtime.ledger.recorder.group_commit.groups - before < threads, "no two appends shared a transaction"


@pytest.fixture
def api_process(settings):
    """The API in a process of its own, which the test may SIGKILL."""
    port = free_port()
    command = [sys.executable, "-m", "api.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=worker_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def healthy() -> bool:
        try:
            return client.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    poll(healthy, 30, "the API starting")
    yield process, client
    if process.poll() is None:
        process.kill()
    process.wait()
    client.close()


def test_a_crash_while_groups_commit_loses_no_acknowledged_write(api_process, settings):
    process, client = api_process
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    acknowledged: list[str] = []
    enough = threading.Event()

    def deliver(n: int) -> None:
        try:
            answer = post_signed(client, channel, sms_payload(channel, sender=f"+1804555{n % 40:04d}"))
        except httpx.TransportError:
            return  # the process is gone: no answer, no promise
        if answer.status_code == 201:
            acknowledged.append(answer.json()["message_id"])
            if len(acknowledged) >= 60:
                enough.set()

    with ThreadPoolExecutor(16) as pool:
        for n in range(400):
            pool.submit(deliver, n)
        enough.wait(60)
        os.kill(process.pid, signal.SIGKILL)

    assert len(acknowledged) >= 60
    with psycopg.connect(settings.database_url) as conn:
        stored = "\n".join(
            row[0]
            for row in conn.execute(
                "select convert_from(state, 'UTF8') from ledger_events where topic like '%InboundMessageReceived'"
            )
        )
    assert [message_id for message_id in acknowledged if message_id not in stored] == []
