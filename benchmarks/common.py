"""What the benchmarks share: the servers, a fresh deployment, server processes, timing calls from a
thread pool, and the table of figures (medians of rounds, beside their baselines)."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from api.embedded import free_port
from api.runtime import migrate
from api.settings import Settings
from ledger.credentials import new_secret_key

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
OPERATOR = "bench-operator"
STARTUP_SECONDS = 120


@contextmanager
def servers(database_url: str | None = None, redis_url: str | None = None) -> Iterator[tuple[str, str]]:
    """The PostgreSQL and Redis to benchmark on: those given, else LEDGER_DATABASE_URL / LEDGER_REDIS_URL,
    else the settings' (DATABASE_URL / REDIS_URL, or a running `ledger up`'s), else embedded servers
    started for the run, as `ledger up` does, and stopped after it."""
    from api.cli import settings_from_environment
    from api.embedded import EmbeddedPostgres, EmbeddedRedis

    settings = settings_from_environment()
    database_url = database_url or os.environ.get("LEDGER_DATABASE_URL") or settings.database_url
    redis_url = redis_url or os.environ.get("LEDGER_REDIS_URL") or settings.redis_url
    if database_url and redis_url:
        yield database_url, redis_url
        return
    directory = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    directory.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started as root
    started = []
    try:
        if not database_url:
            started.append(EmbeddedPostgres(directory))
            database_url = started[-1].url
        if not redis_url:
            started.append(EmbeddedRedis(directory))
            redis_url = started[-1].url
        yield database_url, redis_url
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


class Deployment(NamedTuple):
    env: dict[str, str]  # the environment of its processes
    settings: Settings
    worker: "ServerProcess | None"


@contextmanager
def deployment(
    policies: str = "", server: str | None = None, redis: str | None = None, worker: bool = True
) -> Iterator[Deployment]:
    """A fresh database on the server, migrated, with one `ledger worker` running (unless `worker` is
    false). `policies`: what the worker runs besides the read models. The database and the RQ queue
    are dropped afterwards."""
    server, redis = server or SERVER, redis or REDIS
    database = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    env = dict(
        os.environ,
        DATABASE_URL=make_conninfo(server, dbname=database),
        REDIS_URL=redis,
        LEDGER_ADMIN_TOKEN=OPERATOR,
        LEDGER_SECRET_KEY=new_secret_key(),
        LEDGER_QUEUE=f"bench-{database}",
        LEDGER_DATA_DIR=str(Path(tempfile.gettempdir()) / "ledger-bench"),
        LEDGER_POLICIES=policies,
    )
    settings = Settings(
        database_url=env["DATABASE_URL"],
        redis_url=redis,
        secret_key=env["LEDGER_SECRET_KEY"],
        admin_token=OPERATOR,
        queue_name=env["LEDGER_QUEUE"],
        policies=policies,
    )
    try:
        migrate(settings)
        with ExitStack() as stack:
            running = None
            if worker:
                running = ServerProcess("worker", ledger_command("worker"), env, ready_path=None)
                stack.enter_context(started(running))
            yield Deployment(env, settings, running)
    finally:
        forget_queue(redis, settings.queue_name)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))


def forget_queue(redis_url: str, queue_name: str) -> None:
    """The run's RQ queue, its jobs and the wake-up flags, so that nothing of it is left in a shared Redis."""
    try:
        with Redis.from_url(redis_url, socket_connect_timeout=2) as redis:
            Queue(queue_name, connection=redis).delete(delete_jobs=True)
            keys = [*redis.scan_iter(f"rq:*:{queue_name}"), *redis.scan_iter(f"ledger:{queue_name}:*")]
            if keys:
                redis.delete(*keys)
    except RedisError as error:
        print(f"could not clear the queue {queue_name} from Redis: {error}", file=sys.stderr)


def ledger_command(*args: str) -> list[str]:
    """`ledger ...` with this interpreter (an installed checkout has no script beside it in every layout)."""
    return [sys.executable, "-m", "api.cli", *args]


def uvicorn_command(factory: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1"]


class ServerProcess:
    """A child process; for a server, `--port <free port>` is added and `ready()` waits until it answers."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], ready_path: str | None = "/health"):
        self.name = name
        self.ready_path = ready_path
        self.port = free_port() if ready_path else None
        self.url = f"http://127.0.0.1:{self.port}" if ready_path else None
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        arguments = [*command, "--port", str(self.port)] if ready_path else command
        self.process = subprocess.Popen(arguments, env=env, stdout=subprocess.DEVNULL, stderr=self.errors)

    def check_alive(self, doing: str = "") -> None:
        """Raises, with the end of its stderr, if the process has exited."""
        if self.process.poll() is not None:
            self.errors.seek(0)
            tail = self.errors.read()[-3000:].decode(errors="replace")
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}){doing}:\n{tail}")

    def ready(self, timeout: float = STARTUP_SECONDS) -> "ServerProcess":
        if self.ready_path is None:
            return self
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(" while starting")
            try:
                httpx.get(self.url + self.ready_path, timeout=2)
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not answer within {timeout:g} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()


@contextmanager
def started(*processes: ServerProcess) -> Iterator[list[ServerProcess]]:
    """Processes started together (their start-ups overlap), each answering, and stopped afterwards."""
    try:
        yield [process.ready() for process in processes]
    finally:
        for process in processes:
            process.stop()


def wait_projected(runtime, worker: ServerProcess | None, timeout: float) -> tuple[int, float | None]:
    """(the log's head, the seconds until every projection had reached it, or None past the timeout);
    raises at once if the worker has died."""
    head = runtime.ledger.head_position()
    names = list(runtime.projector.projections)
    started_at = time.perf_counter()
    while time.perf_counter() - started_at < timeout:
        if runtime.projector.wait_for(names, head, timeout=1) is not None:
            return head, time.perf_counter() - started_at
        if worker is not None:
            worker.check_alive(f" with the projections short of position {head}")
    return head, None


def time_each(calls, concurrency: int) -> tuple[float, list[float]]:
    """Runs the calls from `concurrency` threads; the rate per second and each call's latency."""

    def one(call):
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, calls))
    return len(calls) / (time.perf_counter() - started), latencies


def time_calls(call: Callable[[], object], count: int) -> list[float]:
    """Each of `count` calls' duration, one after another."""
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[httpx.Client]:
    """`ledger api` on a free port, its output discarded; a client once it answers."""
    with (
        started(ServerProcess("ledger api", ledger_command("api"), env)) as (api,),
        httpx.Client(base_url=api.url, timeout=60) as http,
    ):
        yield http


# -- figures: medians of rounds, beside their baselines ------------------------------------------------


@dataclass
class Row:
    """One measured thing: its figures for each round (name -> values), shown as medians."""

    name: str
    role: str  # "ceiling", "floor", "ledger", ...: what the row is
    rounds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **figures: float) -> None:
        for name, value in figures.items():
            self.rounds.setdefault(name, []).append(value)

    def median(self, figure: str) -> float:
        values = [value for value in self.rounds.get(figure, []) if value == value]  # without NaN
        return statistics.median(values) if values else float("nan")


@dataclass
class Column:
    title: str
    figure: str
    unit: str = ""  # "ms": seconds shown in milliseconds; "s": seconds; "n": a count
    per_round: bool = False  # also list each round's value


def show(value: float, unit: str) -> str:
    if value != value:
        return "-"
    if unit == "ms":
        return f"{value * 1000:,.1f}"
    if unit == "s":
        return f"{value:,.2f}"
    if unit == "n":
        return f"{value:,.0f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


@dataclass
class Ratio:
    """`row` / `baseline` of a figure, printed under the table, e.g. ledger/ceiling req/s."""

    row: str
    baseline: str
    figure: str
    label: str


def print_report(title: str, rows: Sequence[Row], columns: Sequence[Column], ratios: Sequence[Ratio], notes=()):
    """A rich table of the medians, then each ratio on a line of its own (plain text, easy to grep)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    rounds = max((len(values) for row in rows for values in row.rounds.values()), default=0)
    table = Table(title=f"{title}  (medians of {rounds} round{'s' if rounds != 1 else ''})", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("measure", no_wrap=True)
    for column in columns:
        unit = f" ({column.unit})" if column.unit in ("ms", "s") else ""
        table.add_column(column.title + unit, justify="right", no_wrap=True)
    table.add_column("rounds", no_wrap=True)
    by_name = {row.name: row for row in rows}
    for row in rows:
        cells = [show(row.median(column.figure), column.unit) for column in columns]
        listed = [column for column in columns if column.per_round]
        per_round = "  ".join(
            "/".join(show(value, column.unit) for value in row.rounds.get(column.figure, [])) for column in listed
        )
        table.add_row(row.role, row.name, *cells, per_round)
    console.print(table)
    for ratio in ratios:
        mine, theirs = by_name[ratio.row].median(ratio.figure), by_name[ratio.baseline].median(ratio.figure)
        value = mine / theirs if theirs and theirs == theirs and mine == mine else float("nan")
        console.print(f"ratio {ratio.label}: {value:.3f}x", highlight=False)
    for note in notes:
        console.print(note, highlight=False, style="dim")


def machine() -> str:
    """The machine the figures were taken on, in a few words."""
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, load {load:.1f}"
