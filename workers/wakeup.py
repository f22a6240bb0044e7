"""Coalesced wake-ups: after a commit, at most one pending catch-up job per projection.

Redis is only a signal. `notify()` never touches it: it only raises a flag, and one
background thread sends the wake-ups, so a slow, stalled or absent Redis costs a write
nothing. Notifications that arrive while a send is under way are folded into the next
one. If Redis is down the write has still committed; the worker's sweep catches up.
"""

import logging
import threading

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from workers.jobs import catch_up

log = logging.getLogger(__name__)
PENDING_TTL_SECONDS = 30


class Wakeup:
    def __init__(self, redis: Redis, queue: Queue, projection_names: list[str]) -> None:
        self.redis = redis
        self.queue = queue
        self.pending_keys = {name: f"ledger:{queue.name}:pending:{name}" for name in projection_names}
        self._changed = threading.Condition()
        self._requested = 0  # notifications so far
        self._handled = 0  # notifications covered by a finished send
        self._closed = False
        self._sender: threading.Thread | None = None

    def notify(self) -> None:
        """Asks for a wake-up; returns at once."""
        with self._changed:
            self._requested += 1
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_forever, name="wakeup", daemon=True)
                self._sender.start()
            self._changed.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every wake-up asked for so far has been sent (or failed)."""
        with self._changed:
            target = self._requested
            return self._changed.wait_for(lambda: self._handled >= target or self._closed, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stops the sender, after the send under way (so Redis may be closed next)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            sender = self._sender
        if sender is not None and sender is not threading.current_thread():
            sender.join(timeout)

    def _send_forever(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._requested > self._handled or self._closed)
                if self._closed:
                    return
                covered = self._requested
            self._send()
            with self._changed:
                self._handled = covered
                self._changed.notify_all()

    def _send(self) -> None:
        try:
            self._enqueue_missing_jobs()
        except RedisError as error:
            log.warning("wake-up not sent, the sweep will catch up: %s", error)

    def _enqueue_missing_jobs(self) -> None:
        with self.redis.pipeline(transaction=False) as pipeline:
            for key in self.pending_keys.values():
                pipeline.set(key, 1, nx=True, ex=PENDING_TTL_SECONDS)
            claimed = pipeline.execute()
        for (name, key), was_set in zip(self.pending_keys.items(), claimed, strict=True):
            if was_set:
                self.queue.enqueue(catch_up, name, key, job_timeout=600, result_ttl=0, failure_ttl=3600)
