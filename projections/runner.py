"""Runs projections: catch-up in batches, each batch one transaction that writes the
read-model rows and the projection's tracked position together (exactly-once).

A per-projection advisory lock, taken before the tracked position is read, makes
overlapping workers take turns batch by batch instead of applying an event twice.
"""

from collections.abc import Callable, Iterable
from contextlib import nullcontext

import psycopg
from eventsourcing import persistence
from eventsourcing.application import Application
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from projections import Projection, all_projections

TRACKING_DDL = """
create table if not exists projection_tracking (
    name text primary key,
    position bigint not null default 0,
    updated_at timestamptz not null default now()
)"""
TRACKING_ERROR_DDL = "alter table projection_tracking add column if not exists error text"
MIGRATION_LOCK = 7_201_001
# PostgreSQL unreachable or gone away, as psycopg, its pool and eventsourcing report it.
DATABASE_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)
# What stops one projection without being a bug in the code: the database refusing a batch
# (unreachable, read-only during a failover, an event its tables cannot hold) or a missing migration.
PROJECTION_STOPPED = (psycopg.Error, persistence.PersistenceError, LookupError)


class ProjectionFailed(Exception):
    """A projection could not apply an event: it stops there (nothing is skipped) and the
    others go on. The cause is chained; the error is kept in projection_tracking for /ready."""

    def __init__(self, name: str, position: int, topic: str) -> None:
        super().__init__(f"projection {name} stopped at position {position} ({topic})")
        self.name = name
        self.position = position


class Projector:
    def __init__(self, pool: ConnectionPool, application: Application, batch_size: int = 500) -> None:
        self.pool = pool
        self.recorder = application.recorder
        self.mapper = application.mapper
        self.batch_size = batch_size
        self.projections = dict(all_projections())

    def migrate(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
            conn.execute(TRACKING_DDL)
            conn.execute(TRACKING_ERROR_DDL)
            for projection in self.projections.values():
                for statement in projection.ddl:
                    conn.execute(statement)
                start = (self.recorder.max_notification_id() or 0) if projection.starts_at_head else 0
                conn.execute(
                    "insert into projection_tracking (name, position) values (%s, %s) on conflict do nothing",
                    [projection.name, start],
                )

    def add(self, projection: Projection) -> None:
        """A consumer beyond the read models (a policy), run and tracked like them."""
        self.projections[projection.name] = projection

    def get(self, name: str) -> Projection:
        return self.projections[name]

    def catch_up_all(self) -> dict[str, int]:
        return {name: self.catch_up(projection) for name, projection in self.projections.items()}

    def catch_up(self, projection: Projection) -> int:
        applied = 0
        try:
            while batch := self.run_batch(projection):
                applied += batch
        except ProjectionFailed as failure:
            self._keep_error(projection.name, f"{failure}: {failure.__cause__!r}")
            raise
        return applied

    def run_batch(self, projection: Projection) -> int:
        """Applies the next batch of the log; returns how many notifications it read."""
        try:
            return self._run_batch(projection, pipelined=True)
        except DATABASE_UNAVAILABLE:
            raise
        except (ProjectionFailed, psycopg.Error):
            # A pipeline reports a statement's error at a later statement, under another event: the batch,
            # rolled back, is applied again one statement at a time, to fail at the event that causes it.
            return self._run_batch(projection, pipelined=False)

    def _run_batch(self, projection: Projection, pipelined: bool) -> int:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            position = self._lock_and_read_position(cursor, projection.name)
            notifications = self.recorder.select_notifications(
                start=position, limit=self.batch_size, inclusive_of_start=False
            )
            self._apply_all(projection, conn, cursor, notifications, pipelined)
            if notifications:
                cursor.execute(
                    "update projection_tracking set position = %s, updated_at = now(), error = null where name = %s",
                    [notifications[-1].id, projection.name],
                )
            return len(notifications)

    def _apply_all(self, projection: Projection, conn, cursor, notifications: list, pipelined: bool = True) -> None:
        """The handlers' statements go out in a pipeline: a batch costs a few round trips, not one a statement
        (a handler that reads a row waits for what was sent before it, so it reads its own batch's writes)."""
        with conn.pipeline() if pipelined else nullcontext():
            for notification in notifications:
                self._apply(projection, cursor, notification)

    def _apply(self, projection: Projection, cursor, notification) -> None:
        handler = projection.handler_for(notification.topic)
        if handler is None:
            return
        try:
            handler(cursor, self.mapper.to_domain_event(notification), notification.id)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception as error:  # any bug in one handler stops only its projection, visibly
            raise ProjectionFailed(projection.name, notification.id, notification.topic) from error

    def _keep_error(self, name: str, error: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("update projection_tracking set error = %s where name = %s", [error[:2000], name])

    def rebuild(self, projection: Projection, progress: Callable[[int], None] | None = None) -> int:
        """Replays the whole log into a fresh copy of the read model and swaps it in; returns the
        number of events read. A policy (no tables) simply starts again from the log's beginning."""
        if not projection.tables:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                self._lock_and_read_position(cursor, projection.name)
                cursor.execute("update projection_tracking set position = 0 where name = %s", [projection.name])
            return self._count_as_you_go(lambda: self.run_batch(projection), progress)
        return self._rebuild_in_shadow(projection, progress)

    def _rebuild_in_shadow(self, projection: Projection, progress: Callable[[int], None] | None) -> int:
        """Builds the tables from the projection's current DDL in a schema of their own, replays the log
        into them while the live tables keep serving (and keep being projected), then, holding the
        projection's lock, catches them up and moves them in place, in one transaction: reads never see
        a blank or half-filled model, and the tracked position never goes backwards."""
        shadow = f"rebuild_{projection.name}"
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"drop schema if exists {shadow} cascade")
            conn.execute(f"create schema {shadow}")
            conn.execute(f"set local search_path = {shadow}, public")
            for statement in projection.ddl:
                conn.execute(statement)
        position = 0

        def replay_batch(lock: bool = False) -> int:
            nonlocal position
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                if lock:
                    self._lock_and_read_position(cursor, projection.name)
                cursor.execute(f"set local search_path = {shadow}, public")
                notifications = self.recorder.select_notifications(
                    start=position, limit=self.batch_size, inclusive_of_start=False
                )
                self._apply_all(projection, conn, cursor, notifications)
                if notifications:
                    position = notifications[-1].id
                if lock and not notifications:
                    self._swap_in(cursor, projection, shadow, position)
                return len(notifications)

        applied = self._count_as_you_go(replay_batch, progress)
        while batch := replay_batch(lock=True):  # the last stretch, under the lock, then the swap
            applied += batch
        return applied

    @staticmethod
    def _swap_in(cursor, projection: Projection, shadow: str, position: int) -> None:
        for table in projection.tables:
            cursor.execute(f"drop table if exists public.{table}")
            cursor.execute(f"alter table {shadow}.{table} set schema public")
        cursor.execute(f"drop schema {shadow} cascade")
        cursor.execute(
            """update projection_tracking set position = greatest(position, %s), updated_at = now(), error = null
               where name = %s""",
            [position, projection.name],
        )

    @staticmethod
    def _count_as_you_go(batch: Callable[[], int], progress: Callable[[int], None] | None) -> int:
        applied = 0
        while read := batch():
            applied += read
            if progress:
                progress(applied)
        return applied

    def readiness(self, lock_budget_seconds: float) -> dict:
        """The log's head, each projection's position and lag, and the writers that have held
        the log's write lock longer than the budget. One statement, so one snapshot: a
        projection's position is never read after a head that it has already passed."""
        table = self.recorder.events_table_name
        with self.pool.connection() as conn:
            head, positions, stuck_writers = conn.execute(
                f"""select
                    (select coalesce(max(notification_id), 0) from {table}),
                    (select coalesce(jsonb_object_agg(name, jsonb_build_object('position', position, 'error', error)),
                        '{{}}') from projection_tracking),
                    (select coalesce(jsonb_agg(jsonb_build_object(
                            'pid', activity.pid,
                            'held_seconds', round(extract(epoch from clock_timestamp() - activity.xact_start)))),
                        '[]')
                     from pg_locks lock join pg_stat_activity activity on activity.pid = lock.pid
                     where lock.relation = %s::regclass and lock.mode = 'ExclusiveLock' and lock.granted
                       and activity.xact_start < clock_timestamp() - make_interval(secs => %s))""",
                [table, lock_budget_seconds],
            ).fetchone()
        projections = {
            name: {"position": tracked["position"], "lag": head - tracked["position"], "error": tracked["error"]}
            for name, tracked in positions.items()
            if name in self.projections
        }
        return {"head_position": head, "projections": projections, "stuck_writers": stuck_writers}

    def positions(self) -> dict[str, int]:
        with self.pool.connection() as conn:
            rows = conn.execute("select name, position from projection_tracking").fetchall()
        return {name: position for name, position in rows if name in self.projections}

    def position_of(self, names: Iterable[str]) -> int:
        """The position every one of the named projections has reached."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "select coalesce(min(position), 0) from projection_tracking where name = any(%s)", [list(names)]
            ).fetchone()
        return row[0]

    def wait_for(self, names: Iterable[str], min_position: int, timeout: float) -> int | None:
        """Waits until the projections reach min_position; their position, or None on timeout."""
        names = list(names)
        waiting = Retrying(
            retry=retry_if_result(lambda position: position < min_position),
            wait=wait_exponential(multiplier=0.005, max=0.1),
            stop=stop_after_delay(timeout),
            retry_error_callback=lambda state: None,
        )
        return waiting(self.position_of, names)

    @staticmethod
    def _lock_and_read_position(cursor, name: str) -> int:
        cursor.execute("select pg_advisory_xact_lock(hashtext('ledger.projection.' || %s))", [name])
        row = cursor.execute("select position from projection_tracking where name = %s", [name]).fetchone()
        if row is None:
            raise LookupError(f"projection {name!r} has no tracking row: run `ledger migrate`")
        return row[0]
