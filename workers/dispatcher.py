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
from uuid import UUID

from psycopg_pool import ConnectionPool

from ledger.application import Ledger
from ledger.delivery import SendPolicy
from ledger.providers import Delivery, ProviderAnswer, providers
from projections import outbox
from projections.runner import DATABASE_UNAVAILABLE, PROJECTION_STOPPED, ProjectionFailed, Projector

log = logging.getLogger(__name__)


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
        try:
            self.projector.catch_up(self.projector.get(outbox.PROJECTION.name))
        except (ProjectionFailed, *PROJECTION_STOPPED):
            log.exception("the outbox projection is stopped; sends already projected go on")
        if free_slots <= 0:
            return []
        try:
            with self.pool.connection() as conn:
                return outbox.claim_due(conn, free_slots, self.config.policy.lease_seconds)
        except DATABASE_UNAVAILABLE as error:
            log.warning("cannot read the outbox, retrying: %s", error)
            return []

    def dispatch(self, row: dict) -> None:
        """One due message: an attempt recorded, the provider called, the outcome recorded."""
        conversation_id, message_id = UUID(str(row["conversation_id"])), str(row["message_id"])
        step = self.ledger.begin_attempt(conversation_id, message_id, self.config.policy)
        if step.action == "done":
            self._settle(message_id)
            return
        if step.action == "wait":
            self._reschedule(message_id, step.not_before)
            return
        delivery = self._delivery(row)
        provider = providers().get(delivery.kind)
        if provider is None:
            answer = ProviderAnswer("rejected", None, reason=f"{delivery.kind} channels cannot send")
        else:
            base_url = self.config.provider_urls.get(delivery.kind)
            answer = provider.send(delivery, base_url, self.config.policy.timeout_seconds)
        recorded = self.ledger.record_outcome(conversation_id, message_id, step.attempt, answer, self.config.policy)
        # The outbox projection does the same from the events; doing it now frees the row at once.
        if recorded.settled:
            self._settle(message_id)
        elif recorded.next_attempt_at is not None:
            self._reschedule(message_id, recorded.next_attempt_at)

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
            status_url=f"{self.config.base_url}/v1/webhooks/{channel_id}/status",
            credentials=channel.credentials,
            secret=channel.secret,
        )

    def _settle(self, message_id: str) -> None:
        with self.pool.connection() as conn:
            outbox.remove(conn, message_id)

    def _reschedule(self, message_id: str, due_at) -> None:
        with self.pool.connection() as conn:
            outbox.reschedule(conn, message_id, due_at)


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
