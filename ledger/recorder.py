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
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from ledger.errors import Unavailable
from ledger.group_commit import Append, GroupCommit
from ledger.integrity import GENESIS, StoredLink, event_hash
from ledger.personal import ERASURE_TOPIC, KEYS_DDL

DEFAULT_BUDGET_SECONDS = 10.0


class VersionConflict(IntegrityError):
    """A concurrent writer took one of the stream versions this write expected to append
    (optimistic concurrency; a natural key's first version is how duplicates collide).
    Any other integrity error is a bug, not a conflict."""


HASHES_DDL = """create table if not exists ledger_event_hashes (
    originator_id uuid not null,
    originator_version bigint not null,
    hash text not null,
    prev_hash text not null,
    primary key (originator_id, originator_version))"""
HEADS_DDL = """create table if not exists ledger_stream_heads (
    originator_id uuid primary key,
    version bigint not null,
    hash text not null)"""


class KeyDestroyed(VersionConflict):
    """The write was sealed under a contact key that an erasure destroyed after it was read: the
    command runs again and seals under the contact's next key."""

    def __init__(self, contact_id: Any) -> None:
        super().__init__(f"the data key of contact {contact_id} was destroyed by an erasure")
        self.contact_id = contact_id


class DeadConnection(OperationalError):
    """A pooled connection that was found dead before a transaction began on it (three in a row: the
    database is unreachable, answered like any outage)."""


class UnanchoredStream(Exception):
    """A stream written before hash chains existed, not yet hashed by `ledger migrate`."""


class LedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_write_budget(DEFAULT_BUDGET_SECONDS)
        self.group_commit = GroupCommit(self.commit_group)
        self.sql_create_statements += [SQL(HASHES_DDL), SQL(HEADS_DDL), SQL(KEYS_DDL)]

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
        return self.group_commit.append(stored_events)

    def commit_group(self, group: list[Append]) -> None:
        """One transaction for a group of appends: each is checked on its own (its streams' versions,
        its keys), a refused one fails alone, the others commit together. Pooled connections are not
        pinged before use: one found dead before anything was sent is replaced, up to three times."""
        for attempt in Retrying(
            retry=retry_if_exception_type(DeadConnection), stop=stop_after_attempt(3), reraise=True
        ):
            with attempt:
                self._commit_group_once(group)

    def _commit_group_once(self, group: list[Append]) -> None:
        begun = False
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cursor:
                begun = True
                accepted, positions = self._append_in(cursor, group)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if begun:
                raise  # it may have committed: a command run again then collides on the versions it took
            raise DeadConnection(str(error)) from error
        for append in accepted:  # settled once committed: a caller answers only for a durable write
            append.succeed(positions[: len(append.events)])
            positions = positions[len(append.events) :]

    def _append_in(self, cursor: Any, group: list[Append]) -> tuple[list[Append], list[int]]:
        try:
            cursor.execute(self.lock_and_notify_statement)
            heads = self._heads(cursor, [event for append in group for event in append.events])
            accepted = self._accepted(cursor, group, heads)
            events = [event for append in accepted for event in append.events]
            if not events:
                return [], []
            self._insert_rows(cursor, events)
            positions = self._fetch_ids_after_insert_events(cursor, events)
            self._chain(cursor, events, heads)
            self._destroy_erased_keys(cursor, events)
            return accepted, positions
        except psycopg.errors.UniqueViolation as error:
            if error.diag.table_name != self.events_table_name:
                raise
            raise VersionConflict(str(error)) from error
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as error:
            raise Unavailable(
                f"the event log could not be written within {self.write_budget_seconds:g} s; retry shortly"
            ) from error

    def _accepted(self, cursor: Any, group: list[Append], heads: dict) -> list[Append]:
        """The appends that can commit, in order; each of the others failed with its own conflict:
        a stream version taken (by the log or by an append before it in the group), or a key an erasure
        destroyed (before, or earlier in the group)."""
        all_events = [event for append in group for event in append.events]
        versions = {stream: version for stream, (version, _) in heads.items()}
        dead_keys = self._dead_keys(cursor, all_events)
        erased: set = set()
        accepted = []
        for append in group:
            try:
                versions.update(next_versions(versions, append.events))
                check_keys(append.events, dead_keys, erased)
            except VersionConflict as conflict:
                append.fail(conflict)
                continue
            erased |= {event.originator_id for event in append.events if event.topic == ERASURE_TOPIC}
            accepted.append(append)
        return accepted

    def _insert_rows(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> None:
        rows = [
            self.construct_pg_stored_event(event.originator_id, event.originator_version, event.topic, event.state)
            for event in stored_events
        ]
        cursor.execute(self.insert_events_statement, (rows,))

    # -- crypto-shredding (ledger.personal) ---------------------------------------------------

    def _dead_keys(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> set[tuple[Any, int]]:
        """The contact keys these events were sealed with that an erasure has destroyed (read under the
        log's lock, so no erasure commits between this read and the append)."""
        keys = {event.sealed_by for event in stored_events if getattr(event, "sealed_by", None)}
        if not keys:
            return set()
        contact_ids, generations = zip(*keys, strict=True)
        alive = {
            (row["contact_id"], row["generation"])
            for row in cursor.execute(
                """select k.contact_id, k.generation from ledger_contact_keys k
                   join unnest(%s::uuid[], %s::int[]) as used (contact_id, generation)
                     on k.contact_id = used.contact_id and k.generation = used.generation
                   where k.sealed_key is not null""",
                [list(contact_ids), list(generations)],
            ).fetchall()
        }
        return keys - alive

    def _destroy_erased_keys(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> None:
        """An erasure destroys the contact's keys in the transaction that records it."""
        erased = [event.originator_id for event in stored_events if event.topic == ERASURE_TOPIC]
        if erased:
            cursor.execute(
                """update ledger_contact_keys set sealed_key = null, erased_at = now()
                   where contact_id = any(%s) and sealed_key is not null""",
                [erased],
            )

    # -- the hash chains ---------------------------------------------------------------

    def _heads(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> dict[Any, tuple[int, str]]:
        """The anchored (version, hash) of the streams the events are appended to."""
        stream_ids = list({event.originator_id for event in stored_events})
        return {
            row["originator_id"]: (row["version"], row["hash"])
            for row in cursor.execute(
                "select originator_id, version, hash from ledger_stream_heads where originator_id = any(%s)",
                [stream_ids],
            ).fetchall()
        }

    def _chain(self, cursor: Any, stored_events: Sequence[StoredEvent], heads: dict | None = None) -> None:
        """Hashes the events onto their streams' chains and moves the streams' heads, in the
        transaction that inserts them (under the log's lock, so heads cannot race)."""
        heads = dict(heads) if heads is not None else self._heads(cursor, stored_events)
        hashes = []
        for event in stored_events:
            version, prev_hash = heads.get(event.originator_id, (0, GENESIS))
            if version != event.originator_version - 1:  # the insert above would have failed
                raise AssertionError(
                    f"stream {event.originator_id}: head {version}, appending {event.originator_version}"
                )
            digest = event_hash(event.originator_id, event.originator_version, event.topic, event.state, prev_hash)
            hashes.append((event.originator_id, event.originator_version, digest, prev_hash))
            heads[event.originator_id] = (event.originator_version, digest)
        cursor.execute(
            """with new_hashes as (
                   insert into ledger_event_hashes (originator_id, originator_version, hash, prev_hash)
                   select * from unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[]))
               insert into ledger_stream_heads (originator_id, version, hash)
               select * from unnest(%s::uuid[], %s::bigint[], %s::text[])
               on conflict (originator_id) do update set version = excluded.version, hash = excluded.hash""",
            [
                *map(list, zip(*hashes, strict=True)),
                list(heads),
                [version for version, _ in heads.values()],
                [digest for _, digest in heads.values()],
            ],
        )

    def stream_links(self, stream_id: Any) -> tuple[list[tuple[int, StoredLink]], tuple[int, str] | None]:
        """A stream's stored events with their positions and stored hashes, and its anchored head."""
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                f"""select e.notification_id, e.originator_version, e.topic, e.state, h.hash, h.prev_hash
                    from {self.events_table_name} e
                    left join ledger_event_hashes h
                      on h.originator_id = e.originator_id and h.originator_version = e.originator_version
                    where e.originator_id = %s order by e.originator_version""",
                [stream_id],
            ).fetchall()
            head = conn.execute(
                "select version, hash from ledger_stream_heads where originator_id = %s", [stream_id]
            ).fetchone()
        links = [(row["notification_id"], link_of(row)) for row in rows]
        return links, (head["version"], head["hash"]) if head else None

    def anchor_unhashed_streams(self) -> int:
        """Hashes the streams written before hash chains existed (once, at migration); how many."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute(f"lock table {self.events_table_name} in exclusive mode")
            rows = cursor.execute(
                f"""select originator_id, originator_version, topic, state from {self.events_table_name} e
                    where not exists (select 1 from ledger_stream_heads h where h.originator_id = e.originator_id)
                    order by originator_id, originator_version"""
            ).fetchall()
            events = [
                StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                for row in rows
            ]
            if events:
                self._chain(cursor, events)
            return len({event.originator_id for event in events})

    def stream_count(self) -> int:
        with self.datastore.get_connection() as conn:
            return conn.execute(
                f"""select count(*) as n from (select distinct originator_id from {self.events_table_name}
                    union select originator_id from ledger_stream_heads) streams"""
            ).fetchone()["n"]

    def all_streams(self, batch_size: int = 5000):
        """Every stream with its stored events and hashes, in stream order, read in batches on a
        server-side cursor; a stream whose events are all gone still comes with its head."""
        with self.datastore.get_connection() as conn:
            heads = {
                row["originator_id"]: (row["version"], row["hash"])
                for row in conn.execute("select originator_id, version, hash from ledger_stream_heads").fetchall()
            }
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor(name="verify") as cursor:
            cursor.itersize = batch_size
            cursor.execute(
                f"""select e.originator_id, e.originator_version, e.topic, e.state, h.hash, h.prev_hash
                    from {self.events_table_name} e
                    left join ledger_event_hashes h
                      on h.originator_id = e.originator_id and h.originator_version = e.originator_version
                    order by e.originator_id, e.originator_version"""
            )
            stream_id, links = None, []
            for row in cursor:
                if row["originator_id"] != stream_id:
                    if stream_id is not None:
                        yield stream_id, links, heads.pop(stream_id, None)
                    stream_id, links = row["originator_id"], []
                links.append(
                    StoredLink(
                        row["originator_version"], row["topic"], bytes(row["state"]), row["hash"], row["prev_hash"]
                    )
                )
            if stream_id is not None:
                yield stream_id, links, heads.pop(stream_id, None)
        for emptied_stream_id, head in heads.items():
            yield emptied_stream_id, [], head


def next_versions(versions: dict[Any, int], stored_events: Sequence[StoredEvent]) -> dict[Any, int]:
    """Optimistic concurrency, checked against the anchored heads before the rows are sent: a writer
    that lost the race learns it without shipping its payload (a large message would hold the log's
    lock while it travels, only to collide). The streams' versions after these events."""
    after: dict[Any, int] = {}
    for event in stored_events:
        version = after.get(event.originator_id, versions.get(event.originator_id, 0))
        if event.originator_version != version + 1:
            raise VersionConflict(
                f"stream {event.originator_id}: at version {version}, not {event.originator_version - 1}"
            )
        after[event.originator_id] = event.originator_version
    return after


def check_keys(stored_events: Sequence[StoredEvent], dead_keys: set, erased_contacts: set) -> None:
    for event in stored_events:
        sealed_by = getattr(event, "sealed_by", None)
        if sealed_by is not None and (sealed_by in dead_keys or sealed_by[0] in erased_contacts):
            raise KeyDestroyed(sealed_by[0])


def link_of(row: dict) -> StoredLink:
    return StoredLink(row["originator_version"], row["topic"], bytes(row["state"]), row["hash"], row["prev_hash"])
