"""The dispatcher: turns queued outbound messages into provider calls, in its own process,
so that slow providers never delay projections.

Each round it catches the outbox projection up, leases the due rows (FOR UPDATE SKIP LOCKED)
and sends them on a thread pool. Around every call the conversation stream records the
attempt first and its outcome after; a retry is only a later due time, so a waiting message
holds no thread. If the process dies mid-call, the lease runs out and another round tries
the message again with the same Idempotency-Key.
"""

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ledger.application import Ledger
from ledger.contacts import ERASED
from ledger.delivery import SendPolicy
from ledger.errors import Contended, Unavailable
from ledger.providers import Delivery, ProviderAnswer, providers
from ledger.sending import status_url
from projections import outbox
from projections.runner import DATABASE_UNAVAILABLE, PROJECTION_STOPPED, ProjectionFailed, Projector

log = logging.getLogger(__name__)
RECORD_OUTCOME_SECONDS = 60


@dataclass(frozen=True)
class DispatchConfig:
    policy: SendPolicy
    provider_urls: dict[str, str | None]
    base_url: str  # where providers post status callbacks
    concurrency: int = 8
    poll_seconds: float = 0.2


class Dispatcher:
    def __init__(self, ledger: Ledger, pool: ConnectionPool, projector: Projector, config: DispatchConfig) -> None:
        self.ledger = ledger
        self.pool = pool
        self.projector = projector
        self.config = config
        self._outbox_error: str | None = None

    def run(self, stop: threading.Event) -> None:
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="send") as senders:
            while not stop.is_set():
                rows = self._next_rows(self.config.concurrency - len(in_flight))
                in_flight |= {senders.submit(self.dispatch, row) for row in rows}
                if not in_flight:
                    stop.wait(self.config.poll_seconds)
                    continue
                done, in_flight = wait(in_flight, timeout=self.config.poll_seconds, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.exception() is not None:  # this message only; its lease runs out, it is retried
                        log.error("a send failed unexpectedly", exc_info=future.exception())

    def _next_rows(self, free_slots: int) -> list[dict]:
        self._catch_up_outbox()
        if free_slots <= 0:
            return []
        try:
            with self.pool.connection() as conn:
                return outbox.claim_due(conn, free_slots, self.config.policy.lease_seconds)
        except PROJECTION_STOPPED as error:  # unreachable, or not migrated yet: try again next round
            log.warning("cannot read the outbox, retrying: %s", error)
            return []

    def _catch_up_outbox(self) -> None:
        try:
            self.projector.catch_up(self.projector.get(outbox.PROJECTION.name))
            self._outbox_error = None
        except (ProjectionFailed, *PROJECTION_STOPPED) as error:
            if str(error) != self._outbox_error:  # once per distinct error, not every round
                log.exception("the outbox projection is stopped; messages projected before it go on")
            self._outbox_error = str(error)

    def dispatch(self, row: dict) -> None:
        """One due message: an attempt recorded, the provider called, the outcome recorded."""
        conversation_id, message_id = UUID(str(row["conversation_id"])), str(row["message_id"])
        policy, source = self.config.policy, row["source"]  # source: the kind of stream recording the send
        step = self.ledger.begin_attempt(conversation_id, message_id, policy, source)
        if step.action == "done":
            self._settle(message_id)
            return
        if step.action == "wait":
            self._reschedule(message_id, step.not_before)
            return
        answer = self._call(row, step)
        recorded = self._record(conversation_id, message_id, step.attempt, answer, source)
        # The outbox projection does the same from the events; doing it now frees the row at once.
        if recorded.settled:
            self._settle(message_id)
        elif recorded.next_attempt_at is not None:
            self._reschedule(message_id, recorded.next_attempt_at)

    def _call(self, row: dict, step) -> ProviderAnswer:
        """The provider's answer to this attempt; a failure of the dispatcher's own is an answer
        too (retried like a timeout), so that the attempt gets its outcome and the send ends."""
        if datetime.now(UTC) - step.started_at > timedelta(seconds=self.config.policy.grace_seconds):
            # the attempt took long to commit: calling now could overlap a dispatcher presuming it dead
            return ProviderAnswer("retry", None, reason="the attempt was recorded too late to be sent safely")
        if row["to"] == ERASED:  # no address can read so: the contact's data was erased before it was sent
            return ProviderAnswer("rejected", None, reason="the contact's personal data was erased before it was sent")
        try:
            delivery = self._delivery(row)
            provider = providers().get(delivery.kind)
            if provider is None:
                return ProviderAnswer("rejected", None, reason=f"{delivery.kind} channels cannot send")
            return provider.send(
                delivery, self.config.provider_urls.get(delivery.kind), self.config.policy.timeout_seconds
            )
        except Exception as error:  # a bug or an outage here: recorded as this attempt's failure, and logged
            log.exception("the dispatcher failed before the provider answered message %s", row["message_id"])
            return ProviderAnswer("retry", None, reason=f"the dispatcher failed: {type(error).__name__}")

    def _record(self, conversation_id: UUID, message_id: str, attempt: int, answer: ProviderAnswer, source: str):
        """Records the outcome, trying again through a short outage: a lost outcome would cost
        the provider a second call."""
        retrying = Retrying(
            retry=retry_if_exception_type((Unavailable, Contended, *DATABASE_UNAVAILABLE)),
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop_after_delay(RECORD_OUTCOME_SECONDS),
            reraise=True,
        )
        return retrying(
            self.ledger.record_outcome, conversation_id, message_id, attempt, answer, self.config.policy, source
        )

    def _delivery(self, row: dict) -> Delivery:
        channel_id = str(row["channel_id"])
        channel = self.ledger.sending_channel(UUID(channel_id))
        return Delivery(
            message_id=str(row["message_id"]),
            kind=channel.kind,
            from_address=channel.address,
            to=row["to"],
            body=row["body"],
            attachments=row["attachments"],
            message_type=row["message_type"],
            queued_at=row["queued_at"].isoformat(),
            status_url=status_url(
                self.config.base_url, channel_id, str(row["conversation_id"]), str(row["message_id"])
            ),
            credentials=channel.credentials,
            secret=channel.secret,
        )

    def _settle(self, message_id: str) -> None:
        with self.pool.connection() as conn:
            outbox.remove(conn, message_id)

    def _reschedule(self, message_id: str, due_at) -> None:
        with self.pool.connection() as conn:
            outbox.reschedule(conn, message_id, due_at, self.config.poll_seconds)


def dispatch_config(settings) -> DispatchConfig:
    policy = SendPolicy(
        max_attempts=settings.send_max_attempts,
        backoff_seconds=settings.send_backoff_seconds,
        timeout_seconds=settings.send_timeout_seconds,
    )
    return DispatchConfig(
        policy=policy,
        provider_urls=settings.provider_urls,
        base_url=settings.base_url,
        concurrency=settings.dispatch_concurrency,
        poll_seconds=settings.dispatch_poll_seconds,
    )
