"""What the benchmarks share: a fresh deployment, timing calls from a thread pool, and an API process."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from api.embedded import free_port
from api.runtime import migrate
from api.settings import Settings
from ledger.credentials import new_secret_key

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
OPERATOR = "bench-operator"


@contextmanager
def deployment(policies: str = "") -> Iterator[tuple[dict[str, str], Settings]]:
    """A fresh database on SERVER, migrated, with one `ledger worker` running: the environment of
    its processes and its settings. `policies`: what the worker runs besides the read models."""
    database = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    env = dict(
        os.environ,
        DATABASE_URL=make_conninfo(SERVER, dbname=database),
        REDIS_URL=REDIS,
        LEDGER_ADMIN_TOKEN=OPERATOR,
        LEDGER_SECRET_KEY=new_secret_key(),
        LEDGER_QUEUE=f"bench-{database}",
        LEDGER_DATA_DIR="/tmp/ledger-bench",
        LEDGER_POLICIES=policies,
    )
    settings = Settings(
        database_url=env["DATABASE_URL"],
        redis_url=REDIS,
        secret_key=env["LEDGER_SECRET_KEY"],
        admin_token=OPERATOR,
        queue_name=env["LEDGER_QUEUE"],
        policies=policies,
    )
    migrate(settings)
    command = [Path(sys.executable).parent / "ledger", "worker"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield env, settings
    finally:
        worker.terminate()
        worker.wait()
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))


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


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[httpx.Client]:
    """`ledger api` on a free port, its output discarded; a client once it answers."""
    port = free_port()
    command = [Path(sys.executable).parent / "ledger", "api", "--port", str(port)]
    api = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            while True:
                try:
                    http.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield http
    finally:
        api.terminate()
        api.wait()
