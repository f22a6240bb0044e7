"""Every send ends (guarantee 9): retries with backoff through provider faults, Retry-After
honoured, permanent rejections final at once, waiting retries holding no worker, and a
dispatcher killed mid-call whose message is still delivered exactly once."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from tests.support import create_channel, create_company, poll, queue_message, read_message, settled_message
from tests.test_projections import worker_env
from tests.test_sends import CUSTOMER
from workers.process import sweep_forever


def started(attempt: dict) -> datetime:
    return datetime.fromisoformat(attempt["started_at"])


def outcomes(client, tenant, message_id: str) -> list[str | None]:
    return [attempt["outcome"] for attempt in read_message(client, tenant, message_id).get("attempts", [])]


def test_fault_matrix_every_send_ends_and_none_is_delivered_twice(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    mock_providers.random_faults(0.3, ["429", "500", "timeout"], seed=7, retry_after=1, delay_seconds=1.5)
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        queued = list(
            pool.map(lambda n: queue_message(client, tenant, channel, f"+1804555{n:04d}", f"m{n}").json(), range(100))
        )
    messages = [settled_message(client, tenant, answer["message_id"], timeout=90) for answer in queued]
    wall = time.monotonic() - began

    log = mock_providers.requests()
    calls = Counter(entry["idempotency_key"] for entry in log)
    deliveries = Counter(entry["idempotency_key"] for entry in log if entry["accepted"])
    for message in messages:
        assert message["status"] in ("sent", "failed"), message
        assert message["status"] == "sent" or message["failure_reason"], message
        assert deliveries[message["id"]] == 1 if message["status"] == "sent" else deliveries[message["id"]] <= 1
        assert len(message["attempts"]) == calls[message["id"]], message  # one call per recorded attempt
        assert [attempt["n"] for attempt in message["attempts"]] == list(range(1, len(message["attempts"]) + 1))
    outcomes = Counter(message["status"] for message in messages)
    attempts = sum(len(message["attempts"]) for message in messages)
    faults = Counter(entry.get("fault") for entry in log)
    print(
        f"\nfault matrix: 100 sends, {attempts} attempts, {sum(deliveries.values())} deliveries, "
        f"{outcomes['sent']} sent, {outcomes['failed']} failed, faults {dict(faults)}, {wall:.1f} s"
    )
    assert outcomes["sent"] >= 95 and attempts > 100


def test_retry_after_is_honoured(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    mock_providers.faults("429", retry_after=2)
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    first, second = message["attempts"]
    assert (first["outcome"], first["http_status"], second["outcome"]) == ("retry", 429, "sent")
    assert (started(second) - started(first)).total_seconds() >= 2
    assert datetime.fromisoformat(first["next_attempt_at"]) >= started(first)


def test_a_permanent_rejection_fails_at_once_with_its_reason(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    mock_providers.faults("400")
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    assert message["status"] == "failed" and len(message["attempts"]) == 1
    assert "invalid destination" in message["failure_reason"]
    assert message["attempts"][0]["outcome"] == "failed" and message["attempts"][0]["http_status"] == 400
    assert not any(entry["accepted"] for entry in mock_providers.requests())


def test_retries_stop_after_the_maximum_attempts(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    mock_providers.faults(*["500"] * 5)
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    assert message["status"] == "failed" and len(message["attempts"]) == 5
    assert "gave up after 5 attempts" in message["failure_reason"]
    assert [attempt["outcome"] for attempt in message["attempts"]] == ["retry"] * 4 + ["failed"]


def test_a_waiting_retry_does_not_block_other_sends(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    mock_providers.faults("429", retry_after=4)
    waiting = queue_message(client, tenant, channel, CUSTOMER, "first").json()["message_id"]
    poll(lambda: outcomes(client, tenant, waiting) == ["retry"], what="the first attempt failing")
    other = queue_message(client, tenant, channel, "+18045559999", "second").json()["message_id"]
    assert settled_message(client, tenant, other)["status"] == "sent"
    assert outcomes(client, tenant, waiting) == ["retry"]  # still backing off
    assert settled_message(client, tenant, waiting)["status"] == "sent"


def test_a_dispatcher_killed_mid_call_is_replaced_and_the_message_is_delivered_once(
    client, runtime, settings, mock_providers
):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    env = worker_env(
        settings,
        LEDGER_PUBLIC_URL=str(client.base_url),
        LEDGER_PROVIDER_URL_SMS=mock_providers.url,
        LEDGER_SEND_TIMEOUT_SECONDS="1",
        LEDGER_SEND_BACKOFF_SECONDS="0.05",
        LEDGER_DISPATCH_POLL_SECONDS="0.05",
    )
    command = [sys.executable, "-m", "api.cli", "dispatcher"]
    mock_providers.faults("timeout", delay_seconds=3)  # accepted at once, answered too late
    stop = threading.Event()
    sweeper = threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop))
    sweeper.start()
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        message_id = queue_message(client, tenant, channel, CUSTOMER).json()["message_id"]
        poll(mock_providers.requests, what="the provider call")
        os.kill(first.pid, signal.SIGKILL)  # while the provider call is in flight
        first.wait(timeout=10)
        second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            message = settled_message(client, tenant, message_id, timeout=40)
        finally:
            second.terminate()
            second.wait(timeout=10)
    finally:
        stop.set()
        sweeper.join()
        if first.poll() is None:
            first.kill()
    assert message["status"] == "sent"
    assert [(attempt["n"], attempt["outcome"]) for attempt in message["attempts"]] == [(1, None), (2, "sent")]
    log = mock_providers.requests()
    assert [entry["accepted"] for entry in log] == [True, False]  # the retry was a replay, not a second delivery
    assert {entry["idempotency_key"] for entry in log} == {message_id}
    assert message["provider_message_id"] == log[0]["provider_message_id"]


def test_attempts_that_never_get_an_outcome_are_retried_then_the_message_fails(client, runtime):
    """A dispatcher that dies on every call of one message (the outcome is never recorded):
    each lost attempt is tried again with the same key, up to twice max_attempts, then the send ends."""
    from uuid import UUID

    from ledger.delivery import SendPolicy

    tenant = create_company(client)
    channel = create_channel(client, tenant)
    queued = queue_message(client, tenant, channel, CUSTOMER).json()
    conversation_id, message_id = UUID(queued["conversation_id"]), queued["message_id"]
    policy = SendPolicy(max_attempts=2, timeout_seconds=0.05, grace_seconds=0)

    def next_step():  # what a dispatcher does once the lost attempt's lease has run out
        step = runtime.ledger.begin_attempt(conversation_id, message_id, policy)
        return None if step.action == "wait" else (step.action, step.attempt)

    steps = [poll(next_step, what="the lease running out") for _ in range(5)]
    assert steps == [("send", 1), ("send", 2), ("send", 3), ("send", 4), ("done", 0)]
    conversation = runtime.ledger.repository.get(conversation_id)
    assert conversation.outbound[message_id]["status"] == "failed"
    assert runtime.ledger.begin_attempt(conversation_id, message_id, policy).action == "done"


def test_a_dispatcher_bug_during_a_call_is_recorded_and_the_send_still_ends(
    client, mock_providers, monkeypatch, sending
):
    from ledger.providers import providers

    class BrokenProvider:
        kind = "sms"

        def send(self, delivery, base_url, timeout):
            raise TypeError("a bug in an adapter")

    monkeypatch.setitem(providers(), "sms", BrokenProvider())
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    assert message["status"] == "failed" and len(message["attempts"]) == 5
    assert "the dispatcher failed: TypeError" in message["failure_reason"]
    assert mock_providers.requests() == []
