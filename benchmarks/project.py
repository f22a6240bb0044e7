"""Projection catch-up from position 0, beside reading (and decoding) the same log.

    uv run ledger bench project [--events 100000] [--projections timeline,summaries|all] [--rounds 3]

Appends `--events` events in batches through `Ledger.commit()` (conversations of ten inbound SMS each:
the contacts, conversations, messages and receipts that many webhooks append; benchmarks/seed.py),
with no worker running. Then, each round, for each read model: its tables emptied and its position set
to 0, the time `Projector.catch_up()` (what the worker runs) takes to reach the head; beside the
ceilings: `recorder.select_notifications` over the same log in the projector's batches, the rows only
and decoded into domain events.
"""

import argparse
import time

from api.runtime import build_runtime
from benchmarks.common import Column, Ratio, Row, deployment, machine, print_report
from benchmarks.seed import company_with_channel, events_per_conversation, seed_conversations
from projections import Projection
from projections.runner import Projector

MESSAGES_PER_CONVERSATION = 10
READ = "read the log (select_notifications)"
DECODED = "read and decode the log"


def read_log(projector: Projector, decode: bool) -> int:
    """Reads the whole log as the projector does (its batch size, after each batch's last position)."""
    recorder, mapper = projector.recorder, projector.mapper
    position = read = 0
    while notifications := recorder.select_notifications(
        start=position, limit=projector.batch_size, inclusive_of_start=False
    ):
        if decode:
            for notification in notifications:
                mapper.to_domain_event(notification)
        position = notifications[-1].id
        read += len(notifications)
    return read


def reset(projector: Projector, projection: Projection) -> None:
    """The read model emptied and back at position 0 (nothing else projects meanwhile)."""
    with projector.pool.connection() as conn, conn.transaction():
        if projection.tables:
            conn.execute(f"truncate {', '.join(projection.tables)}")
        conn.execute("update projection_tracking set position = 0, error = null where name = %s", [projection.name])


def chosen(projector: Projector, names: str) -> list[Projection]:
    if names == "all":
        return [projection for projection in projector.projections.values() if projection.tables]
    unknown = [name for name in names.split(",") if name not in projector.projections]
    if unknown:
        raise SystemExit(f"no projection {', '.join(unknown)}; one of: {', '.join(projector.projections)} (or all)")
    return [projector.get(name) for name in names.split(",")]


def timed(call) -> tuple[int, float]:
    started = time.perf_counter()
    count = call()
    return count, time.perf_counter() - started


def run(options: argparse.Namespace, database_url: str, redis_url: str) -> None:
    with deployment(server=database_url, redis=redis_url, worker=False) as (_, settings, _):
        runtime = build_runtime(settings)
        try:
            projector = runtime.projector
            projections = chosen(projector, options.projections)
            seeded = company_with_channel(runtime.ledger)
            conversations = max(1, options.events // events_per_conversation(MESSAGES_PER_CONVERSATION, False))
            seed_conversations(runtime.ledger, seeded, conversations, MESSAGES_PER_CONVERSATION)
            head = runtime.ledger.head_position()
            rows = [Row(READ, "ceiling"), Row(DECODED, "ceiling")]
            rows += [Row(f"{projection.name} catch-up from 0", "ledger") for projection in projections]
            for _ in range(options.rounds):
                for row, decode in ((rows[0], False), (rows[1], True)):
                    read, seconds = timed(lambda decode=decode: read_log(projector, decode))
                    row.add(rate=read / seconds, seconds=seconds)
                for row, projection in zip(rows[2:], projections, strict=True):
                    reset(projector, projection)
                    read, seconds = timed(lambda projection=projection: projector.catch_up(projection))
                    row.add(rate=read / seconds, seconds=seconds)
        finally:
            runtime.close()
    columns = [Column("events/s", "rate", per_round=True), Column("time", "seconds", "s")]
    ratios = [Ratio(row.name, DECODED, "rate", f"{row.name.split()[0]}/decoded-read events/s") for row in rows[2:]]
    notes = [
        f"{head} events in the log: {seeded.events} appended in {seeded.seconds:.1f} s "
        f"({seeded.events / seeded.seconds:,.0f} events/s, {conversations} conversations of "
        f"{MESSAGES_PER_CONVERSATION} messages); batch size {settings.batch_size}; {machine()}"
    ]
    print_report("ledger bench project", rows, columns, ratios, notes)


if __name__ == "__main__":
    from benchmarks.bench import main

    main("project")
