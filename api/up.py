"""`ledger up`: the servers it embeds when none is configured, the migrations, then the API, workers, a
dispatcher and (with --mock-providers or --demo) the mock providers, supervised until asked to stop."""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, wait_fixed

from api import demo
from api.runtime import admin_token, secret_key
from api.settings import PROVIDER_KINDS, Settings
from api.supervisor import MAX_RESTARTS, Child, CrashLoop, Supervisor, claim_data_dir, refuse_ports_in_use

SUPERVISE_EVERY_SECONDS = 0.2
SERVERS_FILE = "servers.json"  # the URLs of a running `ledger up`, for the other commands
MOCK_PROVIDERS_PORT = 8001


def mock_providers_port() -> int:
    return int(os.environ.get("LEDGER_MOCK_PROVIDERS_PORT") or MOCK_PROVIDERS_PORT)


def command_up(args: argparse.Namespace) -> None:
    settings = Settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir_lock = claim_data_dir(data_dir)  # before anything is started or written
    mock_port = {mock_providers_port(): "set LEDGER_MOCK_PROVIDERS_PORT"} if args.mock_providers or args.demo else {}
    refuse_ports_in_use(args.host, {args.port: "choose another with --port", **mock_port})
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    servers: list = []
    supervisor = Supervisor(stopping, int(os.environ.get("LEDGER_UP_MAX_RESTARTS", MAX_RESTARTS)))
    failure = None
    try:
        env = start_servers(settings, data_dir, servers)
        demo.configure_up(args, env)  # --demo implies --mock-providers
        mock_url = point_providers_at_mock(args, env)
        # where providers post status callbacks, unless configured
        reachable_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        env.setdefault("LEDGER_PUBLIC_URL", f"http://{reachable_host}:{args.port}")
        subprocess.run([sys.executable, "-m", "api.cli", "migrate"], env=env, check=True)
        demo.prepare_up(args, env)
        supervisor.start(children_of_up(args, env))
        url = f"http://{args.host}:{args.port}"
        if wait_until_answering(f"{url}/health", supervisor, stopping) and mock_providers_answer(
            mock_url, supervisor, stopping
        ):
            print(f"ledger is up: {url}  (console: {url}/console, docs: {url}/docs)", flush=True)
            print(f"operator token: {env['LEDGER_ADMIN_TOKEN']}", flush=True)
        while not stopping.wait(SUPERVISE_EVERY_SECONDS):
            supervisor.keep_running()
    except CrashLoop as crash_loop:
        failure = str(crash_loop)
    except subprocess.CalledProcessError as error:
        failure = f"`{' '.join(error.cmd[2:])}` failed (exit code {error.returncode}); everything was stopped"
    finally:
        supervisor.stop_all()
        (data_dir / SERVERS_FILE).unlink(missing_ok=True)
        for server in reversed(servers):
            server.stop()
        print("ledger stopped", flush=True)
        data_dir_lock.release()
    if failure:
        sys.exit(failure)


def children_of_up(args: argparse.Namespace, env: dict[str, str]) -> list[Child]:
    ledger = [sys.executable, "-m", "api.cli"]
    api = Child("api", [*ledger, "api", "--host", args.host, "--port", str(args.port)], env)
    workers = [Child(f"worker {n}", [*ledger, "worker"], env) for n in range(1, args.workers + 1)]
    dispatcher = Child("dispatcher", [*ledger, "dispatcher"], env)
    mock = []
    if args.mock_providers:
        address = ["--host", args.host, "--port", str(mock_providers_port())]
        mock = [Child("mock providers", [*ledger, "mock-providers", *address], env)]
    return [api, *workers, dispatcher, *mock]


def point_providers_at_mock(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """The mock's URL with --mock-providers, set in `env` for every provider URL not configured; else None."""
    if not args.mock_providers:
        return None
    url = f"http://{args.host}:{mock_providers_port()}"
    for kind in PROVIDER_KINDS:
        if not env.get(f"LEDGER_PROVIDER_URL_{kind.upper()}"):
            env[f"LEDGER_PROVIDER_URL_{kind.upper()}"] = url
    return url


def mock_providers_answer(url: str | None, supervisor: Supervisor, stopping: threading.Event) -> bool:
    """True once the mock providers (if started) answer, after printing their URL; False if asked to stop first."""
    if url is None:
        return True
    if not wait_until_answering(f"{url}/_faults", supervisor, stopping):
        return False
    print(f"mock providers: {url}", flush=True)
    return True


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


def wait_until_answering(url: str, supervisor: Supervisor, stopping: threading.Event) -> bool:
    """True once the URL answers; False if asked to stop first. A child that dies before then
    (a port in use, a bad setting) would only die again: that stops everything at once."""

    def answers() -> bool:
        if stopping.is_set():
            return False
        for child in supervisor.children:
            if child.died():
                raise CrashLoop(f"{child.name} exited ({child.exit_status()}) while starting; everything was stopped")
        with urllib.request.urlopen(url, timeout=1):
            return True

    retrying = Retrying(
        retry=retry_if_exception_type(OSError),
        wait=wait_fixed(0.1),
        stop=lambda _: stopping.is_set(),
        sleep=stopping.wait,  # a stop request cuts the wait short
        retry_error_callback=lambda _: False,
    )
    return retrying(answers)
