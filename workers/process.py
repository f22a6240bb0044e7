"""The worker process: an RQ worker for wake-ups plus a periodic sweep.

The sweep reads only PostgreSQL, so a lost wake-up or a Redis outage never strands
an event: at worst it waits one sweep interval.
"""

import logging
import os
import signal
import threading

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker

from projections.runner import DATABASE_UNAVAILABLE, PROJECTION_STOPPED, ProjectionFailed, Projector
from workers import jobs

log = logging.getLogger(__name__)


def sweep_forever(projector: Projector, interval: float, stop: threading.Event) -> None:
    """Catches every projection up, then waits; a projection that fails is retried on the
    next round and does not hold the others back."""
    while not stop.is_set():
        for projection in projector.projections.values():
            try:
                projector.catch_up(projection)
            except DATABASE_UNAVAILABLE as error:
                log.warning("sweep of %s failed, retrying in %ss: %s", projection.name, interval, error)
            except (ProjectionFailed, *PROJECTION_STOPPED):
                log.exception("projection %s is stopped; the others go on", projection.name)
        stop.wait(interval)


class _StoppableWorker(SimpleWorker):
    """Remembers a SIGINT/SIGTERM, so the retry loop below knows the stop was asked for."""

    def __init__(self, *args, stopping: threading.Event, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping

    def request_stop(self, signum, frame) -> None:
        self.stopping.set()
        super().request_stop(signum, frame)


def run(projector: Projector, redis: Redis, queue_name: str, sweep_interval: float, burst: bool = False) -> None:
    jobs.install(projector)
    queue = Queue(queue_name, connection=redis)
    if burst:
        projector.catch_up_all()
        SimpleWorker([queue], connection=redis).work(burst=True, logging_level=None)  # the "rq" logger's level
        return
    stopping = threading.Event()
    crashed = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_or_stop_the_process, args=(projector, sweep_interval, stopping, crashed), daemon=True
    )
    sweeper.start()
    try:
        _work_until_stopped(queue, sweep_interval, stopping)
    finally:
        stopping.set()
        sweeper.join(timeout=10)
    if crashed.is_set():
        raise SystemExit("the sweep crashed; see the log")


def _sweep_or_stop_the_process(
    projector: Projector, interval: float, stopping: threading.Event, crashed: threading.Event
) -> None:
    """Without its sweep a worker could strand events, so a bug there stops the whole process
    (its supervisor restarts it) instead of leaving it running half-alive."""
    try:
        sweep_forever(projector, interval, stopping)
    except BaseException:
        crashed.set()
        os.kill(os.getpid(), signal.SIGTERM)
        raise


def _work_until_stopped(queue: Queue, retry_interval: float, stopping: threading.Event) -> None:
    """Runs the RQ worker; when it gives up on an unreachable Redis, starts it again
    (the sweep keeps projections current meanwhile) until a stop is asked for."""
    while not stopping.is_set():
        try:
            worker = _StoppableWorker([queue], connection=queue.connection, stopping=stopping)
            # no level of its own: the "rq" logger's applies (WARNING, no line per job, unless --log-level debug)
            worker.work(with_scheduler=False, logging_level=None)
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("Redis unreachable, the sweep keeps projections current: %s", error)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        stopping.wait(retry_interval)
