"""Auditing figures: the history of one long conversation (from the log, chain checked), over HTTP and
in-process, and `ledger verify`'s rate, beside reading the same events without checking them.

    uv run ledger bench replay [--events 10000] [--rounds 3]
    uv run python -m benchmarks.audit [the same options]

Rows, each round:
- ceiling: the conversation's events read and decoded (`event_store.get`), in-process; and every
  stream of the log read with its stored hashes (`recorder.all_streams`) without checking them;
- query: the stream's rows with their hashes (`recorder.stream_links`), no decoding;
- ledger: `Ledger.history` in-process, GET /v1/conversations/{id}/history (JSON and JSON lines) from
  `ledger api`, and `Ledger.verify_all` / `verify_stream` (what `ledger verify` runs).
"""

import argparse
import time

import httpx

from api.runtime import build_runtime
from benchmarks.common import (
    Column,
    Ratio,
    Row,
    ServerProcess,
    deployment,
    ledger_command,
    machine,
    print_report,
    started,
)
from benchmarks.seed import build_conversation, company_with_channel

DECODED = "read + decode the conversation's events"
READ_ALL = "read every stream with its hashes, unchecked"
HISTORY_HTTP = "GET /v1/conversations/{id}/history"
VERIFY_ALL = "verify every stream (ledger verify)"


def timed(call) -> tuple[object, float]:
    started_at = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started_at


def run(options: argparse.Namespace, database_url: str, redis_url: str) -> None:
    with deployment(server=database_url, redis=redis_url) as (env, settings, _):
        runtime = build_runtime(settings)
        try:
            ledger = runtime.ledger
            seeded = company_with_channel(ledger)
            built = time.perf_counter()
            conversation_id = build_conversation(ledger, seeded.company, options.events)
            built = time.perf_counter() - built
            total = ledger.head_position()
            history = ledger.history(seeded.admin, conversation_id)
            assert history.verified and len(history.events) == options.events, "the history does not verify"
            auth = {"Authorization": f"Bearer {seeded.admin_key}"}
            path = f"/v1/conversations/{conversation_id}/history"
            rows = {
                "decoded": Row(DECODED, "ceiling"),
                "links": Row("the stream's rows and hashes (stream_links)", "query"),
                "history": Row("Ledger.history() in-process, chain checked", "ledger"),
                "http": Row(HISTORY_HTTP, "ledger"),
                "jsonl": Row(HISTORY_HTTP + "?format=jsonl", "ledger"),
                "read_all": Row(READ_ALL, "ceiling"),
                "verify_all": Row(VERIFY_ALL, "ledger"),
                "verify_one": Row("verify the conversation (ledger verify --conversation)", "ledger"),
            }
            in_process = {
                "decoded": lambda: len(list(ledger.repository.event_store.get(conversation_id))),
                "links": lambda: len(ledger.recorder.stream_links(conversation_id)[0]),
                "history": lambda: len(ledger.history(seeded.admin, conversation_id).events),
                "read_all": lambda: sum(len(links) for _, links, _ in ledger.recorder.all_streams()),
                "verify_all": lambda: sum(n for _, n, check in ledger.verify_all() if check.verified),
                "verify_one": lambda: ledger.verify_stream(conversation_id)[1],
            }
            with (
                started(ServerProcess("ledger api", ledger_command("api"), env)) as (api,),
                httpx.Client(base_url=api.url, timeout=300) as http,
            ):
                jsonl = {"format": "jsonl"}
                over_http = {
                    "http": lambda: len(http.get(path, headers=auth).raise_for_status().json()["events"]),
                    "jsonl": lambda: http.get(path, params=jsonl, headers=auth).raise_for_status().text.count("\n") - 1,
                }
                http.get(path, headers=auth).raise_for_status()  # the API process's first call: imports, caches
                for _ in range(options.rounds):
                    for name, call in {**in_process, **over_http}.items():
                        events, seconds = timed(call)
                        rows[name].add(seconds=seconds, rate=events / seconds, events=events)
        finally:
            runtime.close()
    columns = [
        Column("time", "seconds", "ms", per_round=True),
        Column("events", "events", "n"),
        Column("events/s", "rate"),
    ]
    ratios = [
        Ratio(HISTORY_HTTP, DECODED, "seconds", "history over HTTP/decoded read time"),
        Ratio(rows["history"].name, DECODED, "seconds", "history in-process/decoded read time"),
        Ratio(VERIFY_ALL, READ_ALL, "rate", "verify/unchecked read events/s"),
    ]
    notes = [
        f"a conversation of {options.events} events ({total} in the log), built in {built:.1f} s; {machine()}",
    ]
    print_report("ledger bench replay", list(rows.values()), columns, ratios, notes)


if __name__ == "__main__":
    from benchmarks.bench import main

    main("replay")
