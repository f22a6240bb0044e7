"""Pure domain rules, on the library's own objects: status folding, the retry policy, and
conversation snapshots taken before outbound sends existed."""

from datetime import UTC, datetime, timedelta
from itertools import permutations
from uuid import uuid4

import pytest
from eventsourcing.domain import Snapshot

from ledger.delivery import RANK, SendPolicy, folded
from ledger.messaging import Conversation

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "reported", "after"),
    [
        ("queued", "sending", "sending"),
        ("sent", "queued", "sent"),
        ("delivered", "sent", "delivered"),
        ("delivered", "failed", "delivered"),
        ("failed", "delivered", "failed"),
        ("undelivered", "delivered", "undelivered"),
        ("delivered", "read", "read"),
        ("failed", "read", "failed"),
        ("undelivered", "read", "undelivered"),
        ("read", "delivered", "read"),
    ],
)
def test_statuses_fold_by_rank(current, reported, after):
    assert folded(current, reported) == after


@pytest.mark.parametrize("reports", list(permutations(["sent", "delivered", "read", "queued"])))
def test_any_order_of_reports_ends_at_the_highest_status(reports):
    status = "queued"
    for report in reports:
        new = folded(status, report)
        assert RANK[new] >= RANK[status]
        status = new
    assert status == "read"


def test_backoff_grows_with_jitter_and_honours_a_bounded_retry_after():
    policy = SendPolicy(backoff_seconds=1, max_backoff_seconds=300, max_retry_after_seconds=3600)
    for attempt in (1, 2, 3, 4):
        delay = (policy.next_attempt_at(NOW, attempt, None) - NOW).total_seconds()
        assert 2 ** (attempt - 1) / 2 <= delay <= 2 ** (attempt - 1)
    assert (policy.next_attempt_at(NOW, 1, 30) - NOW).total_seconds() == 30
    assert policy.next_attempt_at(NOW, 1, 1e12) - NOW == timedelta(seconds=3600)  # no overflow, no year-long wait
    assert (policy.next_attempt_at(NOW, 20, None) - NOW).total_seconds() <= 300


def test_a_snapshot_taken_before_outbound_sends_loads_and_sends():
    conversation = Conversation.start(
        str(uuid4()), str(uuid4()), str(uuid4()), "+18045551234", "key", "+18045550100", str(uuid4()), "system"
    )
    snapshot = Snapshot.take(conversation)
    v1 = ("outbound", "class_version", "read_markers", "bot_fallbacks", "contact_address", "channel_address")
    old_state = {key: value for key, value in snapshot.state.items() if key not in v1}
    old_state["participants"] = ["+18045551234", "+18045550100"]
    old = Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=old_state,
    )
    loaded = old.mutate(None)
    loaded.queue_outbound(uuid4(), str(uuid4()), "sms", "Hi", "Hi", [], None, "user:x")
    assert len(loaded.outbound) == 1 and loaded.last_seq == 1
    assert (loaded.contact_address, loaded.channel_address) == ("+18045551234", "+18045550100")
