"""`ledger bench ingest|project|visibility|read|replay`: bounded loads against a fresh deployment, each
figure printed beside baselines measured in the same run (medians of --rounds rounds, and the ratios).

Each subcommand creates (and drops) its own database on the PostgreSQL given by --database-url, else
LEDGER_DATABASE_URL, else the settings (DATABASE_URL, or a running `ledger up`'s servers), else an
embedded server started for the run; Redis likewise. This module only describes the command line:
each subcommand's module is imported when it runs.
"""

import argparse
import logging
import signal
import sys
from importlib import import_module

SUBCOMMANDS = {
    "ingest": (
        "benchmarks.webhooks",
        "signed SMS webhooks/s against the API, beside a bare FastAPI endpoint and a naive eventsourcing one",
    ),
    "project": (
        "benchmarks.project",
        "projection catch-up from position 0 (events/s), beside reading and decoding the same log",
    ),
    "visibility": (
        "benchmarks.visibility",
        "webhook-to-read latency at a fixed rate: when is a message visible on its conversation's timeline",
    ),
    "read": (
        "benchmarks.reads",
        "GET /v1/conversations and GET /v1/inbox latency with many conversations, beside bare endpoints",
    ),
    "replay": (
        "benchmarks.audit",
        "a long conversation's history over HTTP and the verify rate, beside reading the same events",
    ),
}


def add_parser(commands) -> None:
    """Adds `bench` and its subcommands to the `ledger` command line."""
    bench = commands.add_parser(
        "bench",
        help="benchmarks: a bounded load on a fresh database, beside baselines measured in the same run",
        description=__doc__.split("\n\n")[0],
    )
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    parsers = {}
    for name, (_, help_text) in SUBCOMMANDS.items():
        parsers[name] = kinds.add_parser(name, help=help_text, description=help_text)
        common_options(parsers[name])
        parsers[name].set_defaults(handler=command_bench)
    ingest, project, visibility, read, replay = (parsers[name] for name in SUBCOMMANDS)
    ingest.add_argument("--seconds", type=float, default=10.0, help="measured seconds per target and round")
    ingest.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    ingest.add_argument("--senders", type=int, default=1000, help="distinct senders (conversations) to spread over")
    ingest.add_argument(
        "--client", choices=("auto", "wrk", "asyncio"), default="auto", help="load generator (auto: wrk if installed)"
    )
    project.add_argument("--events", type=int, default=100_000, help="events appended before the catch-ups")
    project.add_argument(
        "--projections", default="timeline,summaries", help="the read models to time, comma-separated, or 'all'"
    )
    visibility.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    visibility.add_argument("--seconds", type=float, default=10.0, help="seconds of webhooks per mode and round")
    visibility.add_argument("--poll-ms", type=float, default=50.0, help="pause between polls without min_position")
    read.add_argument("--conversations", type=int, default=10_000, help="conversations in the log, projected")
    read.add_argument("--agents", type=int, default=10, help="agents the conversations are spread over")
    read.add_argument("--seconds", type=float, default=5.0, help="measured seconds per target and round")
    read.add_argument("--connections", type=int, default=4, help="concurrent keep-alive connections")
    read.add_argument(
        "--client", choices=("auto", "wrk", "asyncio"), default="auto", help="load generator (auto: wrk if installed)"
    )
    replay.add_argument("--events", type=int, default=10_000, help="events of the conversation")


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows their medians")
    parser.add_argument("--database-url", help="the PostgreSQL server (default: see `ledger bench --help`)")
    parser.add_argument("--redis-url", help="the Redis server")


def command_bench(args: argparse.Namespace) -> None:
    from benchmarks.common import servers

    logging.getLogger().setLevel(logging.WARNING)  # httpx logs every request at INFO
    # a SIGTERM unwinds like Ctrl-C: the servers started, the database and the queue are cleaned up
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    module = import_module(SUBCOMMANDS[args.bench][0])
    with servers(args.database_url, args.redis_url) as (database_url, redis_url):
        module.run(args, database_url, redis_url)


def main(subcommand: str, argv: list[str] | None = None) -> None:
    """`python -m benchmarks.<module> [options]`: the same as `ledger bench <subcommand> [options]`."""
    root = argparse.ArgumentParser(prog=f"python -m {SUBCOMMANDS[subcommand][0]}")
    add_parser(root.add_subparsers(dest="command", required=True))
    logging.basicConfig(level=logging.WARNING)
    args = root.parse_args(["bench", subcommand, *(sys.argv[1:] if argv is None else argv)])
    args.handler(args)
