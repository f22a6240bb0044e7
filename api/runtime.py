"""The composition root: builds the application, connections and queues from settings."""

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool
from redis import Redis
from rq import Queue

from api.metrics import Metrics
from api.settings import Settings
from ledger.application import Ledger
from ledger.credentials import SecretBox, new_secret_key
from projections.runner import Projector
from workers.policies import build_policies
from workers.wakeup import Wakeup


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    pool: ConnectionPool
    projector: Projector
    redis: Redis
    queue: Queue
    wakeup: Wakeup
    admin_token: str
    metrics: Metrics

    def close(self) -> None:
        self.wakeup.close()
        self.pool.close()
        self.ledger.close()
        self.redis.close()


class IdleCheck:
    """The pool's liveness check, run only on a connection that sat idle a while: one returned a moment
    ago is alive, and checking it cost a round trip on every read."""

    IDLE_SECONDS = 2.0

    def __init__(self) -> None:
        self._returned_at: WeakKeyDictionary = WeakKeyDictionary()

    def returned(self, conn) -> None:
        self._returned_at[conn] = time.monotonic()

    def check(self, conn) -> None:
        if time.monotonic() - self._returned_at.get(conn, 0.0) > self.IDLE_SECONDS:
            ConnectionPool.check_connection(conn)


def postgres_env(database_url: str) -> dict[str, str]:
    """eventsourcing's settings naming the PostgreSQL server and database of a URL."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
    }


def eventsourcing_env(database_url: str, create_table: bool, pool_size: int, timeout: int) -> dict[str, str]:
    return {
        **postgres_env(database_url),
        # A small minimum that can grow: after an outage a pool at its maximum waits out
        # its reconnection backoff, while one below it connects again on demand.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(pool_size - 1),
        # eventsourcing retries a failed connection 10 times: split the budget between them.
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, timeout // 10)),
        # No check round trip per checkout: reads retry a dead connection (eventsourcing), and so do
        # appends while nothing was sent on it (ledger.recorder).
        "POSTGRES_PRE_PING": "no",
        "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerRecorder",
        "CREATE_TABLE": "yes" if create_table else "no",
    }


def file_secret(settings_value: str | None, path: Path, generate) -> str:
    """The configured value, else the one kept in the data dir, else a new one kept there."""
    if settings_value:
        return settings_value
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def admin_token(settings: Settings) -> str:
    return file_secret(settings.admin_token, settings.data_dir / "admin-token", lambda: secrets.token_urlsafe(32))


def secret_key(settings: Settings) -> str:
    return file_secret(settings.secret_key, settings.data_dir / "secret-key", new_secret_key)


def build_runtime(settings: Settings, create_tables: bool = False) -> Runtime:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (`ledger up` sets them for you)")
    ledger = Ledger(
        eventsourcing_env(settings.database_url, create_tables, settings.db_pool_size, settings.db_timeout_seconds),
        SecretBox(secret_key(settings)),
        settings.default_region,
        write_budget_seconds=settings.db_timeout_seconds,
    )
    idle_check = IdleCheck()
    pool = ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=settings.db_pool_size,
        kwargs={
            "autocommit": True,
            # A worker that hangs mid-batch must not hold its projection's lock for hours.
            "options": "-c idle_in_transaction_session_timeout=60s -c lock_timeout=60s",
            "keepalives": 1,
            "keepalives_idle": 30,
        },
        timeout=settings.db_timeout_seconds,
        check=idle_check.check,
        reset=idle_check.returned,
        open=True,
    )
    projector = Projector(pool, ledger, settings.batch_size)
    for policy in build_policies(ledger, projector):
        if create_tables or policy.name in settings.enabled_policies:  # every policy gets its tracking row
            projector.add(policy)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=2)
    queue = Queue(settings.queue_name, connection=redis)
    wakeup = Wakeup(redis, queue, list(projector.projections))
    ledger.commit_listeners.append(lambda position: wakeup.notify())
    metrics = Metrics(ledger, pool, projector)
    return Runtime(settings, ledger, pool, projector, redis, queue, wakeup, admin_token(settings), metrics)


def migrate(settings: Settings) -> None:
    runtime = build_runtime(settings, create_tables=True)
    try:
        runtime.ledger.recorder.anchor_unhashed_streams()
        runtime.projector.migrate()
    finally:
        runtime.close()
