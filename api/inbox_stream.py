"""The live inbox stream: one LISTEN connection per API process, fanned out to the streams it serves.

The inbox projection writes its `inbox_events` rows and a `pg_notify('ledger_inbox', '<company> <owner>')`
in the same batch transaction, so a notification arrives only once its rows are committed. This
process listens on one autocommit connection and wakes the streams subscribed to that (company,
owner): each woken stream runs one query for its rows after the last position it sent. Nothing polls
the database per client. When the LISTEN connection drops it is opened again (with a growing pause)
and every stream is woken once, to pick up what was committed while nobody listened.

Streams end when their client disconnects, and when the server shuts down: an event stream never
finishes by itself, so the servers are configured with a graceful-shutdown timeout
(`SHUTDOWN_GRACE_SECONDS`) after which uvicorn cancels the responses still open.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.sse import ServerSentEvent

from api.dependencies import read_model, runtime_of
from api.runtime import Runtime
from projections import inbox
from projections.runner import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)
READ_BATCH = 500  # rows per query when a stream replays a long history
RECONNECT_MAX_SECONDS = 5.0
LIVENESS_SECONDS = 30.0  # an idle LISTEN connection is checked this often
SHUTDOWN_GRACE_SECONDS = 2  # uvicorn's timeout_graceful_shutdown: open streams are cancelled after it
LISTENER_NAME = "ledger-inbox-listener"  # the LISTEN connection's application_name, as pg_stat_activity shows it
Key = tuple[str, str | None]  # (company id, owner id; None: the unassigned queue)


class Subscriber:
    __slots__ = ("key", "wake")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.wake = asyncio.Event()


class InboxHub:
    """The process's LISTEN connection and the streams it wakes; started by the first stream."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.subscribers: dict[Key, set[Subscriber]] = defaultdict(set)
        self.closed = False
        self.listening = False
        self.connections = 0  # LISTEN connections opened so far
        self._listener: asyncio.Task | None = None

    # -- the streams ------------------------------------------------------------------------

    async def stream(
        self,
        company_id: str,
        owner_id: str | None,
        after: int,
        heartbeat_seconds: float,
        is_disconnected: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[ServerSentEvent]:
        """The inbox's changes after the log position `after`, then live ones as they are
        projected; a comment when idle for heartbeat_seconds. Ends when the hub closes, the
        client goes or the database does (the client resumes with Last-Event-ID)."""
        with self._subscription((company_id, owner_id)) as subscriber:
            yield ServerSentEvent(comment=f"inbox changes after position {after}")
            while not self.closed:
                subscriber.wake.clear()  # before reading: a notification from now on wakes us again
                try:
                    rows = await read_model(self.runtime, inbox.events_after, company_id, owner_id, after, READ_BATCH)
                except DATABASE_UNAVAILABLE as error:
                    log.warning("inbox stream ended, the database is unavailable: %s", error)
                    return
                for row in rows:
                    after = row["position"]
                    yield ServerSentEvent(id=str(after), raw_data=orjson.dumps(row["data"]).decode())
                if len(rows) == READ_BATCH:
                    continue
                try:
                    await asyncio.wait_for(subscriber.wake.wait(), heartbeat_seconds)
                except TimeoutError:
                    if self.closed or await is_disconnected():
                        return
                    yield ServerSentEvent(comment="heartbeat")

    @contextmanager
    def _subscription(self, key: Key) -> Iterator[Subscriber]:
        self._start()
        subscriber = Subscriber(key)
        self.subscribers[key].add(subscriber)
        try:
            yield subscriber
        finally:
            subscribers = self.subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self.subscribers[key]

    def _wake(self, key: Key | None = None) -> None:
        groups = self.subscribers.values() if key is None else [self.subscribers.get(key, ())]
        for subscribers in groups:
            for subscriber in subscribers:
                subscriber.wake.set()

    @property
    def stream_count(self) -> int:
        return sum(len(subscribers) for subscribers in self.subscribers.values())

    # -- the listener -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._listener is not None or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen_forever(), name="inbox-listen")

    async def _listen_forever(self) -> None:
        delay = 0.1
        while not self.closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.runtime.settings.database_url,
                    autocommit=True,
                    application_name=LISTENER_NAME,
                    connect_timeout=self.runtime.settings.db_timeout_seconds,
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    await conn.execute(f"listen {inbox.CHANNEL}")
                    self.listening, delay = True, 0.1
                    self.connections += 1
                    log.info("listening for inbox changes")
                    self._wake()  # what was committed while nobody listened
                    while True:
                        async for notify in conn.notifies(timeout=LIVENESS_SECONDS):
                            self._wake(inbox.parse_payload(notify.payload))
                        await conn.execute("select 1")  # a connection gone silently fails here
            except Exception as error:  # noqa: BLE001 - whatever broke the connection, listen again
                log.warning("inbox LISTEN connection lost, reconnecting in %.1f s: %r", delay, error)
            finally:
                self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _end_streams(self) -> None:
        self.closed = True
        self._wake()
        if self._listener is not None:
            self._listener.cancel()

    async def close(self) -> None:
        self._end_streams()
        tasks = [task for task in (self._listener,) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def hub_of(request: Request) -> InboxHub:
    state = request.app.state
    if getattr(state, "inbox_hub", None) is None:
        state.inbox_hub = InboxHub(runtime_of(request))
    return state.inbox_hub


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Closes the process's LISTEN connection when the application stops."""
    yield
    hub = getattr(app.state, "inbox_hub", None)
    if hub is not None:
        await hub.close()
