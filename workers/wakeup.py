"""Coalesced wake-ups: after a commit, at most one pending catch-up job per projection.

Redis is only a signal. If it is down the write has still committed; the worker's
periodic sweep catches the projections up.
"""

import logging

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

    def notify(self) -> None:
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
