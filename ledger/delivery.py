"""The rules of an outbound message's life: how its status folds and when a failed
attempt is tried again. Pure functions, shared by the aggregate and the read models."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "read")
TERMINAL = ("delivered", "undelivered", "failed")
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3, "read": 4}
# Provider words for the same states (Twilio's MessageStatus values).
SYNONYMS = {"accepted": "queued", "scheduled": "queued", "canceled": "failed", "partially_delivered": "delivered"}


def folded(current: str, reported: str) -> str:
    """The status after a report: it only moves up the ranks; the first terminal status to
    arrive stays, and only `read` can follow `delivered` (guarantee 6)."""
    if reported == "read":
        return "read" if current not in ("undelivered", "failed") else current
    return reported if RANK[reported] > RANK[current] else current


def canonical_status(raw: str) -> str | None:
    status = raw.strip().lower()
    status = SYNONYMS.get(status, status)
    return status if status in RANK else None


@dataclass(frozen=True)
class SendPolicy:
    """spec section 7: retry 429 (honouring Retry-After), 5xx and timeouts with exponential
    backoff and jitter, up to max_attempts; any other 4xx is final at once."""

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0
    max_backoff_seconds: float = 300.0
    max_retry_after_seconds: float = 3600.0  # a provider asking for longer is waited for this long
    grace_seconds: float = 5.0

    @property
    def lease_seconds(self) -> float:
        """How long an attempt without an outcome is presumed in flight: past this, its
        dispatcher is presumed dead and the message is tried again with the same key."""
        return 3 * self.timeout_seconds + self.grace_seconds  # connect, send and read may each take the timeout

    @property
    def max_started_attempts(self) -> int:
        """Attempts whose outcome a crash lost are tried again beyond max_attempts, but not
        forever: a message whose sending kills its dispatcher every time still ends."""
        return 2 * self.max_attempts

    def next_attempt_at(self, now: datetime, attempt: int, retry_after: float | None) -> datetime:
        """Full jitter over an exponential ceiling, never earlier than the provider asked."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_seconds))
        return now + timedelta(seconds=delay)


# The dispatcher's view of one send, as the stream that sends it keeps it (a conversation, per outbound
# message; an assistance request): what begin_attempt and record_outcome read.


def new_send_state(queued_at: str) -> dict:
    return {
        "status": "queued",
        "attempts": 0,
        "attempt_open_since": None,  # ISO time of an attempt with no outcome yet
        "not_before": None,  # ISO time before which no attempt may start
        "settled": False,  # sent or failed: the dispatcher is done with it
        "provider_message_id": None,  # once sent
        "reports": [],  # [provider status, error code] of every callback recorded
        "queued_at": queued_at,
    }


def attempt_started(state: dict, attempt: int, started_at: str) -> None:
    state.update(attempts=attempt, attempt_open_since=started_at, status=folded(state["status"], "sending"))


def attempt_failed(state: dict, next_attempt_at: str) -> None:
    state.update(attempt_open_since=None, not_before=next_attempt_at)


def send_settled(state: dict, status: str, provider_message_id: str | None = None) -> None:
    state.update(attempt_open_since=None, settled=True, status=folded(state["status"], status))
    if provider_message_id is not None:
        state["provider_message_id"] = provider_message_id
