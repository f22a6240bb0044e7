"""`ledger up` from an empty data dir: embedded servers, data kept across a restart, nothing left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from api.embedded import free_port
from tests.support import create_channel, create_company, post_signed, sms_payload

LEDGER = str(Path(sys.executable).parent / "ledger")


def processes_of(data_dir: Path) -> list[psutil.Process]:
    """Every process started for this data dir: children carry it in their environment,
    the embedded servers in their command line."""
    found = []
    for process in psutil.process_iter():
        try:
            if str(data_dir) in " ".join(process.cmdline()) or process.environ().get("LEDGER_DATA_DIR") == str(
                data_dir
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


class LedgerUp:
    def __init__(self, data_dir: Path, **servers: str) -> None:
        self.port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "LEDGER_ADMIN_TOKEN", "LEDGER_SECRET_KEY")
        }
        env.update(servers, LEDGER_DATA_DIR=str(data_dir))
        self.env = env
        self.process = subprocess.Popen(
            [LEDGER, "up", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.token = self._read_token()  # printed once the API answers
        ready = httpx.get(f"{self.url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text

    def _read_token(self) -> str:
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("operator token: "):
                return line.split(": ", 1)[1].strip()
        raise AssertionError("ledger up printed no token:\n" + "".join(self.output))

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)
        return time.monotonic() - started


def test_ledger_up_keeps_data_across_restarts_and_leaves_no_process(server_dir):
    data_dir = server_dir / "data"
    first = LedgerUp(data_dir)
    try:
        assert first.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=first.url, timeout=30) as client:
            tenant = create_company(client, operator_token=first.token)
            channel = create_channel(client, tenant)
            written = post_signed(client, channel, sms_payload(channel, body="survives restarts")).json()
            timeline = client.get(
                f"/v1/conversations/{written['conversation_id']}",
                params={"min_position": written["position"]},
                headers=tenant.auth,
            )
            assert timeline.status_code == 200, timeline.text
        rebuilt = subprocess.run(
            [LEDGER, "rebuild", "timeline"], env=first.env, capture_output=True, text=True, timeout=120
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt timeline" in rebuilt.stdout
    finally:
        seconds = first.stop()
    assert first.process.returncode == 0
    assert seconds < 15
    assert processes_of(data_dir) == []

    second = LedgerUp(data_dir)
    try:
        assert second.token == first.token
        with httpx.Client(base_url=second.url, timeout=30) as client:
            timeline = client.get(f"/v1/conversations/{written['conversation_id']}", headers=tenant.auth)
            assert timeline.status_code == 200, timeline.text
            assert [m["body"] for m in timeline.json()["messages"]] == ["survives restarts"]
            again = post_signed(client, channel, sms_payload(channel, body="after restart"))
            assert again.status_code == 201
    finally:
        second.stop()
    assert processes_of(data_dir) == []


def test_ledger_up_with_server_urls_starts_no_server(server_dir, db_url, redis_url):
    data_dir = server_dir / "data"
    up = LedgerUp(data_dir, DATABASE_URL=db_url, REDIS_URL=redis_url)
    try:
        with httpx.Client(base_url=up.url, timeout=30) as client:
            tenant = create_company(client, operator_token=up.token)
            assert client.get("/v1/users", headers=tenant.auth).status_code == 200
        assert not (data_dir / "postgres").exists() and not (data_dir / "redis").exists()
        commands = [" ".join(process.cmdline()) for process in processes_of(data_dir)]
        assert len(commands) == 3, commands  # ledger up, its API and its worker
        assert not any("postgres" in command or "redis-server" in command for command in commands)
    finally:
        up.stop()
    assert processes_of(data_dir) == []
