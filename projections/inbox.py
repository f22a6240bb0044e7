"""Inboxes: per owner, the open conversations with what waits for an answer.

`waiting_since` is the time of the oldest inbound message after the conversation's last outbound
message written by a person (the bot's replies do not end a wait), null when there is none.
`unread_count` counts the inbound messages after the latest of that last outbound message and the
current owner's read marker. Every inbox, and the unassigned queue (owner null), is ordered by
`waiting_since`, oldest first, nulls last.

Each log event that changes an inbox also writes one row per changed inbox to `inbox_events`, keyed
by (company, owner, log position): the history the live stream (GET /v1/inbox/stream) sends and
replays from. The rows and a `pg_notify('ledger_inbox', ...)` are written in the projection's batch
transaction, so listeners hear of the rows once they are committed, never before. A projection's
batches commit in log order, so a reader that has seen position P never later finds a new row at or
below P.
"""

from dataclasses import dataclass, field
from datetime import datetime
from weakref import WeakKeyDictionary

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.messaging import Conversation
from projections import Projection, summaries

CHANNEL = "ledger_inbox"  # the NOTIFY channel; payload: "<company_id> <owner_id, or empty for the unassigned queue>"
NIL = "00000000-0000-0000-0000-000000000000"  # stands for the unassigned queue in keys
OWNER_KEY = f"coalesce(owner_id, '{NIL}'::uuid)"

PROJECTION = Projection(
    "inbox",
    ddl=[
        """create table if not exists inbox_conversations (
            conversation_id uuid primary key,
            company_id uuid not null,
            owner_id uuid,
            status text not null,
            pending_inbound jsonb not null default '[]',
            unread_count integer not null default 0,
            waiting_since timestamptz,
            updated_at timestamptz not null
        )""",
        """create index if not exists inbox_conversations_open
            on inbox_conversations (company_id, owner_id, waiting_since, updated_at) where status = 'open'""",
        """create table if not exists inbox_read_markers (
            conversation_id uuid not null,
            user_id uuid not null,
            seq integer not null,
            primary key (conversation_id, user_id)
        )""",
        """create table if not exists inbox_owners (
            company_id uuid not null,
            owner_id uuid not null,
            last_assigned_at timestamptz not null,
            primary key (company_id, owner_id)
        )""",
        """create table if not exists inbox_counts (
            company_id uuid not null,
            owner_key uuid not null,
            open_count integer not null,
            primary key (company_id, owner_key)
        )""",
        """create table if not exists inbox_events (
            company_id uuid not null,
            owner_id uuid,
            position bigint not null,
            conversation_id uuid not null,
            data jsonb not null
        )""",
        f"""create unique index if not exists inbox_events_key
            on inbox_events (company_id, ({OWNER_KEY}), position)""",
    ],
    tables=["inbox_conversations", "inbox_read_markers", "inbox_owners", "inbox_counts", "inbox_events"],
)

STATE = ("owner_id", "status", "pending_inbound", "unread_count", "waiting_since", "updated_at")
COUNTS = ("unread_count", "waiting_since")


@dataclass
class Batch:
    """What the handlers read, kept for the rest of a batch: each is read from its table at most once and
    kept as it is then written. Only this projection writes these tables, one batch at a time (its lock),
    so what is kept is what the tables hold; and a batch's statements go out pipelined without waiting on
    a read an event."""

    rows: dict[str, dict] = field(default_factory=dict)  # conversation id -> its inbox_conversations row
    markers: dict[tuple[str, str], int] = field(default_factory=dict)  # (conversation, user) -> read seq
    open_counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (company, owner key) -> open


_batches: WeakKeyDictionary = WeakKeyDictionary()  # the projector's cursor -> its batch (a cursor a batch)


def batch_of(cursor) -> Batch:
    if (batch := _batches.get(cursor)) is None:
        batch = _batches[cursor] = Batch()
    return batch


# -- the handlers ---------------------------------------------------------------------------


@PROJECTION.on(Conversation.Started)
def started(cursor, event: Conversation.Started, position: int) -> None:
    row = {
        "conversation_id": str(event.originator_id),
        "company_id": event.company_id,
        "owner_id": event.owner_id,
        "status": "open",
        "pending_inbound": [],
        "unread_count": 0,
        "waiting_since": None,
        "updated_at": event.recorded_at,
    }
    cursor.execute(
        """insert into inbox_conversations (conversation_id, company_id, owner_id, status, pending_inbound,
               unread_count, waiting_since, updated_at)
           values (%s, %s, %s, 'open', '[]', 0, null, %s)""",
        [row["conversation_id"], row["company_id"], row["owner_id"], row["updated_at"]],
    )
    batch_of(cursor).rows[row["conversation_id"]] = row
    if event.owner_id is not None:  # None: started unassigned (a conversation imported from a provider)
        assigned(cursor, event.company_id, event.owner_id, event.recorded_at)
    announce(cursor, event, position, None, row)


@PROJECTION.on(Conversation.InboundMessageReceived)
def inbound_message_received(cursor, event: Conversation.InboundMessageReceived, position: int) -> None:
    def change(row: dict) -> None:
        row["pending_inbound"] = [*row["pending_inbound"], [event.seq, event.recorded_at.isoformat()]]

    apply(cursor, event, position, change)


@PROJECTION.on(Conversation.OutboundMessageQueued)
def outbound_message_queued(cursor, event: Conversation.OutboundMessageQueued, position: int) -> None:
    def change(row: dict) -> None:
        if event.bot_intent is None:  # written by a person: the wait is over
            row["pending_inbound"] = []

    apply(cursor, event, position, change)


@PROJECTION.on(Conversation.OutboundMessageImported)
def outbound_message_imported(cursor, event: Conversation.OutboundMessageImported, position: int) -> None:
    def change(row: dict) -> None:
        if not (event.author or "").startswith("bot:"):  # a person answered in the provider's tool
            row["pending_inbound"] = []

    apply(cursor, event, position, change)


@PROJECTION.on(Conversation.ReadMarked)
def read_marked(cursor, event: Conversation.ReadMarked, position: int) -> None:
    cursor.execute(
        """insert into inbox_read_markers (conversation_id, user_id, seq) values (%s, %s, %s)
           on conflict (conversation_id, user_id) do update
           set seq = greatest(inbox_read_markers.seq, excluded.seq)""",
        [event.originator_id, event.user_id, event.seq],
    )
    key = (str(event.originator_id), event.user_id)
    batch_of(cursor).markers[key] = max(event.seq, read_marker(cursor, *key))
    # Only the current owner's marker counts; another user's changes nobody's inbox.
    apply(cursor, event, position, lambda row: None, visible_only=True)


@PROJECTION.on(Conversation.OwnerTransferred)
def owner_transferred(cursor, event: Conversation.OwnerTransferred, position: int) -> None:
    def change(row: dict) -> None:
        row["owner_id"] = event.to_owner_id

    apply(cursor, event, position, change)
    if event.to_owner_id is not None:
        assigned(cursor, event.company_id, event.to_owner_id, event.recorded_at)


@PROJECTION.on(Conversation.Closed)
def closed(cursor, event: Conversation.Closed, position: int) -> None:
    apply(cursor, event, position, lambda row: row.update(status="closed"))


@PROJECTION.on(Conversation.Reopened)
def reopened(cursor, event: Conversation.Reopened, position: int) -> None:
    apply(cursor, event, position, lambda row: row.update(status="open"))


def apply(cursor, event, position: int, change, visible_only: bool = False) -> None:
    """Loads the conversation's row, changes it, recomputes what waits, saves it and announces
    the change to the inboxes it touched. visible_only: nothing is written unless the counts changed."""
    before = load(cursor, event.originator_id)
    if before is None:
        raise LookupError(f"inbox: conversation {event.originator_id} has no row (its Started event was not seen)")
    after = dict(before)
    change(after)
    recompute(cursor, after)
    if visible_only and [after[name] for name in COUNTS] == [before[name] for name in COUNTS]:
        return
    after["updated_at"] = event.recorded_at
    cursor.execute(
        f"update inbox_conversations set {', '.join(f'{name} = %s' for name in STATE)} where conversation_id = %s",
        [
            after["owner_id"],
            after["status"],
            Jsonb(after["pending_inbound"]),
            after["unread_count"],
            after["waiting_since"],
            after["updated_at"],
            event.originator_id,
        ],
    )
    batch_of(cursor).rows[after["conversation_id"]] = after
    announce(cursor, event, position, before, after)


def load(cursor, conversation_id) -> dict | None:
    """The conversation's row: as this batch last wrote it, else from the table."""
    if (kept := batch_of(cursor).rows.get(str(conversation_id))) is not None:
        return kept
    row = cursor.execute(
        f"""select conversation_id::text, company_id::text, {", ".join(STATE)}
            from inbox_conversations where conversation_id = %s for update""",
        [conversation_id],
    ).fetchone()
    if row is None:
        return None
    loaded = dict(zip(("conversation_id", "company_id", *STATE), row, strict=True))
    loaded["owner_id"] = None if loaded["owner_id"] is None else str(loaded["owner_id"])
    return loaded


def recompute(cursor, row: dict) -> None:
    """unread: the pending inbound (those after the last outbound by a person) after the current
    owner's read marker; waiting_since: the oldest pending inbound."""
    pending = row["pending_inbound"]
    marker = 0
    if row["owner_id"] is not None and pending:
        marker = read_marker(cursor, row["conversation_id"], row["owner_id"])
    row["unread_count"] = sum(1 for seq, _ in pending if seq > marker)
    row["waiting_since"] = datetime.fromisoformat(pending[0][1]) if pending else None


def read_marker(cursor, conversation_id: str, user_id: str) -> int:
    """The last message the user has read in the conversation (0: none)."""
    markers, key = batch_of(cursor).markers, (conversation_id, user_id)
    if key not in markers:
        found = cursor.execute(
            "select seq from inbox_read_markers where conversation_id = %s and user_id = %s", list(key)
        ).fetchone()
        markers[key] = found[0] if found else 0
    return markers[key]


def assigned(cursor, company_id: str, owner_id: str, at: datetime) -> None:
    cursor.execute(
        """insert into inbox_owners (company_id, owner_id, last_assigned_at) values (%s, %s, %s)
           on conflict (company_id, owner_id) do update
           set last_assigned_at = greatest(inbox_owners.last_assigned_at, excluded.last_assigned_at)""",
        [company_id, owner_id, at],
    )


def announce(cursor, event, position: int, before: dict | None, after: dict) -> None:
    """One inbox_events row per inbox the event changed: the conversation left it (a transfer, a
    close), joined it (a start, a transfer, a reopen) or changed in it; then a NOTIFY per inbox,
    delivered by PostgreSQL when the batch commits."""
    was_in = {before["owner_id"]} if before is not None and before["status"] == "open" else set()
    now_in = {after["owner_id"]} if after["status"] == "open" else set()
    changes = [(owner, "removed", -1) for owner in was_in - now_in]
    changes += [(owner, "added", 1) for owner in now_in - was_in]
    changes += [(owner, "updated", 0) for owner in was_in & now_in]
    for owner, change, delta in changes:
        data = {
            "conversation_id": after["conversation_id"],
            "change": change,
            "cause": type(event).__qualname__.rsplit(".", 1)[-1],
            "owner_id": after["owner_id"],
            "status": after["status"],
            "unread_count": after["unread_count"],
            "waiting_since": after["waiting_since"].isoformat() if after["waiting_since"] else None,
            "open_count": count_open(cursor, after["company_id"], owner, delta),
        }
        cursor.execute(
            f"""insert into inbox_events (company_id, owner_id, position, conversation_id, data)
                values (%s, %s, %s, %s, %s)
                on conflict (company_id, ({OWNER_KEY}), position) do update
                set conversation_id = excluded.conversation_id, data = excluded.data""",
            [after["company_id"], owner, position, after["conversation_id"], Jsonb(data)],
        )
        cursor.execute("select pg_notify(%s, %s)", [CHANNEL, notify_payload(after["company_id"], owner)])


def notify_payload(company_id: str, owner_id: str | None) -> str:
    return f"{company_id} {owner_id or ''}"


def parse_payload(payload: str) -> tuple[str, str | None]:
    company_id, _, owner_id = payload.partition(" ")
    return company_id, owner_id or None


def owner_filter(owner_id: str | None, column: str = "owner_id") -> tuple[str, list]:
    return (f"{column} is null", []) if owner_id is None else (f"{column} = %s", [owner_id])


def count_open(cursor, company_id: str, owner_id: str | None, delta: int) -> int:
    """Adds delta to the open conversations of the owner's inbox; their number after it."""
    counts, key = batch_of(cursor).open_counts, (company_id, owner_id or NIL)
    if key not in counts:
        found = cursor.execute(
            "select open_count from inbox_counts where company_id = %s and owner_key = %s", list(key)
        ).fetchone()
        counts[key] = found[0] if found else 0
    counts[key] += delta
    cursor.execute(
        """insert into inbox_counts (company_id, owner_key, open_count) values (%s, %s, %s)
           on conflict (company_id, owner_key) do update set open_count = excluded.open_count""",
        [*key, counts[key]],
    )
    return counts[key]


# -- the queries ----------------------------------------------------------------------------


def open_counts(conn: Connection, company_id: str) -> dict[str, int]:
    """Open conversations per owner id (the unassigned queue left out)."""
    rows = conn.execute(
        """select owner_key::text, open_count from inbox_counts
           where company_id = %s and owner_key <> %s and open_count > 0""",
        [company_id, NIL],
    ).fetchall()
    return dict(rows)


def open_count_of(conn: Connection, company_id: str, owner_id: str | None) -> int:
    row = conn.execute(
        "select open_count from inbox_counts where company_id = %s and owner_key = %s", [company_id, owner_id or NIL]
    ).fetchone()
    return row[0] if row else 0


def last_assigned(conn: Connection, company_id: str) -> dict[str, datetime]:
    """When each owner last received a conversation (started for them or transferred to them)."""
    rows = conn.execute(
        "select owner_id::text, last_assigned_at from inbox_owners where company_id = %s", [company_id]
    ).fetchall()
    return dict(rows)


def unassigned_queue(conn: Connection, company_id: str, changed_by: datetime) -> list[str]:
    """The open unassigned conversation ids last changed by that time, longest waiting first (nulls last)."""
    rows = conn.execute(
        f"""select conversation_id::text from inbox_conversations
            where company_id = %s and status = 'open' and owner_id is null and updated_at <= %s
            order by {ORDER}""",
        [company_id, changed_by],
    ).fetchall()
    return [row[0] for row in rows]


ORDER = "waiting_since asc nulls last, updated_at asc, conversation_id asc"
# The summary's columns, from the summaries projection (so that a column it adds is served here too),
# but the owner and status from this read model, so that each item agrees with the inbox it is in.
OWN_COLUMNS = {"owner_id", "status"}


def summary_columns() -> str:
    names = [name.strip() for name in summaries.COLUMNS.split(",")]
    return ", ".join(f"i.{name}" if name in OWN_COLUMNS else f"s.{name}" for name in names)


def inbox_of(conn: Connection, company_id: str, owner_id: str | None, limit: int = 500) -> dict:
    """{owner_id, open_count, items}: the owner's open conversations (None: the unassigned queue),
    longest waiting first, each a summary with unread_count and waiting_since."""
    where, params = owner_filter(owner_id, "i.owner_id")
    with conn.cursor(row_factory=dict_row) as cursor:
        items = cursor.execute(
            f"""select {summary_columns()}, i.unread_count, i.waiting_since
                from inbox_conversations i join conversation_summaries s on s.id = i.conversation_id
                where i.company_id = %s and i.status = 'open' and {where}
                order by i.waiting_since asc nulls last, i.updated_at asc, i.conversation_id asc
                limit %s""",
            [company_id, *params, limit],
        ).fetchall()
    open_count = open_count_of(conn, company_id, owner_id) if len(items) >= limit else len(items)
    return {"owner_id": owner_id, "open_count": open_count, "items": items}


def events_after(conn: Connection, company_id: str, owner_id: str | None, position: int, limit: int) -> list[dict]:
    """The owner's inbox changes after the log position, oldest first: [{position, data}]."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"""select position, data from inbox_events
                where company_id = %s and {OWNER_KEY} = coalesce(%s::uuid, '{NIL}'::uuid) and position > %s
                order by position limit %s""",
            [company_id, owner_id, position, limit],
        ).fetchall()
