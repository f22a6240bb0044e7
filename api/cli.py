"""The `ledger` command line: the composition root and the second way in."""

import argparse
import json
import logging
import logging.config
import os
import signal
import sys
import threading
import time
import uuid

import uvicorn
from pydantic import ValidationError

from api.app import create_app
from api.inbox_stream import SHUTDOWN_GRACE_SECONDS
from api.runtime import build_runtime, migrate
from api.settings import LogLevel, Settings, configuration_error, environment_help, logging_config
from api.supervisor import (
    StartRefused,
)
from api.up import SERVERS_FILE, command_up, mock_providers_port
from projections.runner import DATABASE_UNAVAILABLE

log = logging.getLogger("ledger")


def settings_from_environment() -> Settings:
    """Settings from the environment; without server URLs, those of a running `ledger up`
    on the same data dir, so `ledger rebuild` and friends work beside it."""
    settings = Settings()
    servers_file = settings.data_dir / SERVERS_FILE
    if (not settings.database_url or not settings.redis_url) and servers_file.exists():
        servers = json.loads(servers_file.read_text())
        settings.database_url = settings.database_url or servers["DATABASE_URL"]
        settings.redis_url = settings.redis_url or servers["REDIS_URL"]
    return settings


def asgi_app():
    """The uvicorn factory: builds the runtime when the server process starts."""
    return create_app(build_runtime(settings_from_environment()))


def command_api(args: argparse.Namespace) -> None:
    uvicorn.run(
        "api.cli:asgi_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,  # open inbox streams end then
        access_log=args.access_log,  # a line per request costs ~10% of a webhook's time: off unless asked
        log_config=logging_config(Settings().log_level),  # the ledger's format, in every uvicorn process
    )


def command_worker(args: argparse.Namespace) -> None:
    from workers.process import run

    settings = settings_from_environment()
    runtime = build_runtime(settings)
    try:
        run(runtime.projector, runtime.redis, settings.queue_name, settings.sweep_seconds, burst=args.burst)
    finally:
        runtime.close()


def command_dispatcher(args: argparse.Namespace) -> None:
    from workers.dispatcher import Dispatcher, dispatch_config

    settings = settings_from_environment()
    runtime = build_runtime(settings)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        Dispatcher(runtime.ledger, runtime.pool, runtime.projector, dispatch_config(settings)).run(stopping)
    finally:
        runtime.close()


def command_verify(args: argparse.Namespace) -> None:
    """Every stream's hash chain (or one conversation's); exit 1 naming the first broken stream."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    runtime = build_runtime(settings_from_environment())
    try:
        if args.conversation:
            checks, total_streams = [runtime.ledger.verify_stream(args.conversation)], 1
        else:
            checks, total_streams = runtime.ledger.verify_all(), runtime.ledger.recorder.stream_count()
        columns = [
            TextColumn("verifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        ]
        events = 0
        started = time.monotonic()
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("streams", total=total_streams, rate="")
            for stream_id, count, check in checks:
                if not check.verified:
                    sys.exit(f"broken: stream {stream_id} at version {check.broken_at}: {check.reason}")
                events += count
                rate = f"{events / max(time.monotonic() - started, 1e-9):,.0f} events/s"
                progress.update(task, advance=1, rate=rate)
        elapsed = time.monotonic() - started
        print(f"verified: {events} events in {elapsed:.2f} s ({events / max(elapsed, 1e-9):,.0f} events/s)")
    finally:
        runtime.close()


def command_replay(args: argparse.Namespace) -> None:
    """A conversation's history from the log, as a timeline in the terminal (or JSON lines)."""
    from rich.console import Console
    from rich.table import Table

    from api.routes.audit import event_out, jsonl

    runtime = build_runtime(settings_from_environment())
    try:
        found = runtime.ledger.read_history(args.conversation_id)
    finally:
        runtime.close()
    if args.json:
        for line in jsonl(found):
            sys.stdout.write(line.decode())
        return
    table = Table(title=f"conversation {found.conversation_id}")
    for column in ("#", "position", "recorded at", "actor", "event", "data"):
        table.add_column(column)
    for event in found.events:
        data = event_out(event).model_dump(mode="json")["data"]
        text = ", ".join(f"{key}={value}" for key, value in (data or {}).items())
        recorded = event.recorded_at.isoformat(timespec="seconds") if event.recorded_at else "(undecodable)"
        table.add_row(str(event.version), str(event.position), recorded, event.actor or "", event.type, text[:120])
    console = Console()
    console.print(table)
    verdict = "verified" if found.verified else f"BROKEN at version {found.broken_at}: {found.reason}"
    console.print(f"head hash {found.head_hash}: {verdict}")
    if not found.verified:
        sys.exit(1)


def command_mock_providers(args: argparse.Namespace) -> None:
    from mock_providers.app import serve

    serve(args.host, args.port if args.port is not None else mock_providers_port())


def command_migrate(args: argparse.Namespace) -> None:
    migrate(settings_from_environment())
    print("migrated")


def command_rebuild(args: argparse.Namespace) -> None:
    """Rebuilds read models (or restarts policies) from the log, with a progress bar; reads keep
    answering from the old model until the new one is swapped in."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    runtime = build_runtime(settings_from_environment())
    try:
        projections = runtime.projector.projections
        if args.all:
            chosen = [projection for projection in projections.values() if projection.tables]
        elif args.projection in projections:
            chosen = [projections[args.projection]]
        else:
            sys.exit(f"no projection {args.projection!r}; one of: {', '.join(projections)} (or --all)")
        head = max(runtime.ledger.head_position(), 1)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns) as progress:
            for projection in chosen:
                task = progress.add_task(projection.name, total=head, rate="")
                started = time.monotonic()

                def advance(done: int, task=task, started=started) -> None:
                    rate = f"{done / max(time.monotonic() - started, 1e-9):,.0f}/s"
                    progress.update(task, completed=min(done, head), rate=rate)

                total = runtime.projector.rebuild(projection, progress=advance)
                progress.update(task, completed=head)
                print(f"rebuilt {projection.name} from {total} events")
    finally:
        runtime.close()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ledger", description="The messaging ledger.")
    commands = root.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, then run the API and workers (embedded servers if no URLs)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--workers", type=int, default=1, help="worker processes")
    up.add_argument(
        "--mock-providers",
        action="store_true",
        help="also serve the mock providers on LEDGER_MOCK_PROVIDERS_PORT (8001) and point the unset "
        "LEDGER_PROVIDER_URL_* at them",
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="create (once) a demo company on the mock providers, write <data dir>/demo.json, and let the seed "
        "dialects' routes be called without a key from loopback (implies --mock-providers)",
    )
    up.set_defaults(handler=command_up)
    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.add_argument("--access-log", action="store_true", help="log every request (off: /metrics counts them)")
    api.set_defaults(handler=command_api)
    worker = commands.add_parser("worker", help="run projections: RQ wake-ups plus a periodic sweep")
    worker.add_argument("--burst", action="store_true", help="catch up once and exit")
    worker.set_defaults(handler=command_worker)
    replay = commands.add_parser("replay", help="a conversation's history from the log, in the terminal")
    replay.add_argument("conversation_id", type=uuid.UUID)
    replay.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    replay.set_defaults(handler=command_replay)
    verify = commands.add_parser("verify", help="check the hash chains of every stream (exit 1 if one is broken)")
    verify.add_argument("--conversation", type=uuid.UUID, help="only this conversation's stream")
    verify.set_defaults(handler=command_verify)
    dispatcher = commands.add_parser("dispatcher", help="send queued outbound messages through their providers")
    dispatcher.set_defaults(handler=command_dispatcher)
    mock = commands.add_parser("mock-providers", help="serve mock provider APIs for development and tests")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=None, help="default: LEDGER_MOCK_PROVIDERS_PORT, else 8001")
    mock.set_defaults(handler=command_mock_providers)
    commands.add_parser("migrate", help="create the event store and read-model tables").set_defaults(
        handler=command_migrate
    )
    rebuild = commands.add_parser("rebuild", help="rebuild a read model from the log, swapped in when complete")
    rebuild.add_argument("projection", nargs="?", help="a read model, or a policy to restart from the log")
    rebuild.add_argument("--all", action="store_true", help="every read model")
    rebuild.set_defaults(handler=command_rebuild)
    add_bench(commands)
    for name, command in commands.choices.items():
        describe(command, name, next(action.help for action in commands._choices_actions if action.dest == name))
    return root


LOG_LEVELS = ("debug", "info", "warning", "error")


def describe(command: argparse.ArgumentParser, name: str, summary: str) -> None:
    """What `ledger <command> --help` says beside its options: what it does and the variables it reads."""
    command.description = command.description or summary
    command.epilog = environment_help(name)
    command.formatter_class = argparse.RawDescriptionHelpFormatter
    command.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="debug also logs each RQ job (default: LEDGER_LOG_LEVEL, else info)",
    )


def add_bench(commands) -> None:
    """`ledger bench ...`: the benchmarks package describes and runs its subcommands."""
    from benchmarks.bench import add_parser

    add_parser(commands)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.log_level:
        os.environ["LEDGER_LOG_LEVEL"] = args.log_level  # for this process's settings and its children's
    try:
        level: LogLevel = Settings().log_level  # every variable checked before anything starts
    except ValidationError as error:
        fail(args.command, configuration_error(error), exit_code=2)
    logging.config.dictConfig(logging_config(level))
    try:
        args.handler(args)
    except StartRefused as refused:
        fail(args.command, str(refused))
    except DATABASE_UNAVAILABLE as error:
        fail(args.command, f"PostgreSQL is unreachable: {' '.join(str(error).split())}")


def fail(command: str, message: str, exit_code: int = 1) -> None:
    """One line on stderr, no traceback."""
    print(f"ledger {command}: {message}", file=sys.stderr, flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
