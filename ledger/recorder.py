"""The event store's writer: eventsourcing's Postgres recorder, without psycopg's pipeline
mode and with a time budget.

Why not the pipeline: psycopg 3.3.9's `pipeline_communicate` stops sending once its command
queue is empty even when `PQflush()` reports bytes still queued in libpq's output buffer.
`Pipeline.sync()` then waits for results while PostgreSQL waits (`ClientRead`) for the rest
of the INSERT, holding the events table's EXCLUSIVE lock, so every later write of every
tenant waits too. It happens whenever a batch is larger than the socket buffers take at
once (about 200 KB on a Unix socket). Outside a pipeline psycopg flushes each statement
completely before it waits for the answer. The lock, the NOTIFY and the time limits go in
one round trip, so a write costs four: BEGIN, that, the INSERT, COMMIT.

Why a budget: a writer that cannot take the log's lock in time gives up with `Unavailable`
(503 at the API) instead of queueing behind a stuck transaction; eventsourcing's own
recorder retries a lock timeout ten times.
"""

from collections.abc import Sequence
from typing import Any

import psycopg.errors
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.errors import Unavailable

DEFAULT_BUDGET_SECONDS = 10.0


class VersionConflict(IntegrityError):
    """A concurrent writer took one of the stream versions this write expected to append
    (optimistic concurrency; a natural key's first version is how duplicates collide).
    Any other integrity error is a bug, not a conflict."""


class LedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_write_budget(DEFAULT_BUDGET_SECONDS)

    def set_write_budget(self, seconds: float) -> None:
        """Composes, once, the statement that sets the budget, locks the log and notifies."""
        self.write_budget_seconds = seconds
        self.lock_and_notify_statement = SQL(
            "SET LOCAL statement_timeout = {budget}; SET LOCAL lock_timeout = {budget}; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}"
        ).format(
            budget=max(1, int(seconds * 1000)),
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cursor:
            try:
                cursor.execute(self.lock_and_notify_statement)
                self._insert_rows(cursor, stored_events)
            except psycopg.errors.UniqueViolation as error:
                if error.diag.table_name != self.events_table_name:
                    raise
                raise VersionConflict(str(error)) from error
            except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as error:
                raise Unavailable(
                    f"the event log could not be written within {self.write_budget_seconds:g} s; retry shortly"
                ) from error
            return self._fetch_ids_after_insert_events(cursor, stored_events)

    def _insert_rows(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> None:
        rows = [
            self.construct_pg_stored_event(event.originator_id, event.originator_version, event.topic, event.state)
            for event in stored_events
        ]
        cursor.execute(self.insert_events_statement, (rows,))
