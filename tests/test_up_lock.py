"""`ledger up` owns its data dir and its ports: a second one is refused at once, in one line, touching nothing,
while the first keeps serving."""

import subprocess
import time
import uuid
from pathlib import Path

import httpx

from api.embedded import free_port
from tests.support import create_company
from tests.test_ledger_up import LEDGER, LedgerUp


def files_of(directory: Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in directory.rglob("*")}


def refused(env: dict[str, str], *options: str) -> str:
    """The one line a `ledger up` that must not start printed, once it exited (quickly, non-zero)."""
    started = time.monotonic()
    result = subprocess.run([LEDGER, "up", *options], env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 15, "the refusal was not at once"
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr and result.stdout == "", result
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


def test_a_second_ledger_up_is_refused_at_once_and_the_first_keeps_serving(server_dir, db_url, redis_url):
    data_dir = server_dir / "data"
    queue = f"ledger-test-{uuid.uuid4().hex[:12]}"
    first = LedgerUp(data_dir, DATABASE_URL=db_url, REDIS_URL=redis_url, LEDGER_QUEUE=queue)
    try:
        before = files_of(data_dir)
        assert "another `ledger up`" in refused(first.env, "--port", str(free_port()))
        assert files_of(data_dir) == before  # servers.json, the token and the secret key untouched

        elsewhere = {**first.env, "LEDGER_DATA_DIR": str(server_dir / "elsewhere")}
        assert f"port {first.port} " in refused(elsewhere, "--port", str(first.port))
        mock_port = {**elsewhere, "LEDGER_MOCK_PROVIDERS_PORT": str(first.port)}
        message = refused(mock_port, "--port", str(free_port()), "--mock-providers")
        assert f"port {first.port} " in message and "LEDGER_MOCK_PROVIDERS_PORT" in message

        with httpx.Client(base_url=first.url, timeout=30) as client:
            assert client.get("/ready").status_code == 200
            create_company(client, operator_token=first.token)
    finally:
        first.stop()
    assert first.process.returncode == 0
