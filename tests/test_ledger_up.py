"""`ledger up` from an empty data dir: embedded servers, data kept across a restart, nothing left behind."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from api.embedded import free_port
from tests.support import (
    create_channel,
    create_company,
    poll,
    post_signed,
    queue_message,
    read_conversation,
    read_message,
    sms_payload,
)

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
    def __init__(self, data_dir: Path, *options: str, **env_vars: str) -> None:
        self.port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "LEDGER_ADMIN_TOKEN", "LEDGER_SECRET_KEY")
        }
        env.update(env_vars, LEDGER_DATA_DIR=str(data_dir))
        self.env = env
        self.process = subprocess.Popen(
            [LEDGER, "up", "--port", str(self.port), *options],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []  # the lines read so far
        self._lines: queue.Queue[str | None] = queue.Queue()  # None once the output ends
        threading.Thread(target=self._read_output, daemon=True).start()
        # printed once the API answers
        self.token = self.wait_for("operator token: ", timeout=120).split(": ", 1)[1].strip()
        ready = httpx.get(f"{self.url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text

    def _read_output(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, start: str, timeout: float = 30) -> str:
        """The next line of output that starts with `start`."""
        deadline = time.monotonic() + timeout
        while (line := self._next_line(deadline)) is not None:
            if line.startswith(start):
                return line
        raise AssertionError(f"ledger up printed no {start!r} line:\n" + "".join(self.output))

    def _next_line(self, deadline: float) -> str | None:
        try:
            line = self._lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            return None
        if line is not None:
            self.output.append(line)
        return line

    def started_pid(self, name: str) -> int:
        """The pid printed for a child at start-up, e.g. "worker 1 started (pid 1234)"."""
        lines = [line for line in self.output if line.startswith(f"{name} started (pid ")]
        assert lines, f"ledger up printed no pid for {name}:\n" + "".join(self.output)
        return pid_in(lines[0])

    def wait_for_exit(self, timeout: float = 30) -> str:
        """All the output left, once ledger up exited."""
        self.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._next_line(deadline) is not None:
            pass
        return "".join(self.output)

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.wait_for_exit()
        return time.monotonic() - started


def pid_in(line: str) -> int:
    """The last number of a line such as "worker 1 exited (signal SIGKILL); restarted as pid 1234"."""
    return int(re.findall(r"\d+", line)[-1])


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
            inbound = [m["body"] for m in timeline.json()["messages"] if m["direction"] == "inbound"]
            assert inbound == ["survives restarts"]  # the bot may have answered too
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
        assert len(commands) == 4, commands  # ledger up, its API, its worker and its dispatcher
        assert not any("postgres" in command or "redis-server" in command for command in commands)
    finally:
        up.stop()
    assert processes_of(data_dir) == []


def test_ledger_up_restarts_a_worker_that_dies(server_dir):
    data_dir = server_dir / "data"
    up = LedgerUp(data_dir)
    try:
        with httpx.Client(base_url=up.url, timeout=30) as client:
            tenant = create_company(client, operator_token=up.token)
            channel = create_channel(client, tenant)
            first = post_signed(client, channel, sms_payload(channel, body="before the kill")).json()
            killed = up.started_pid("worker 1")
            os.kill(killed, signal.SIGKILL)
            restarted = up.wait_for("worker 1 exited")
            assert restarted.startswith("worker 1 exited (signal SIGKILL); restarted as pid "), restarted
            worker = psutil.Process(pid_in(restarted))  # its command line may not be readable yet
            assert worker.pid != killed and worker.ppid() == up.process.pid
            assert client.get("/health").status_code == 200
            second = post_signed(client, channel, sms_payload(channel, body="after the kill")).json()
            conversation = read_conversation(client, tenant, first["conversation_id"], min_position=second["position"])
            inbound = [m["body"] for m in conversation["messages"] if m["direction"] == "inbound"]
            assert inbound == ["before the kill", "after the kill"]
    finally:
        up.stop()
    assert up.process.returncode == 0
    assert processes_of(data_dir) == []


def test_ledger_up_stops_everything_on_a_crash_loop(server_dir):
    data_dir = server_dir / "data"
    up = LedgerUp(data_dir, LEDGER_UP_MAX_RESTARTS="1")
    try:
        os.kill(up.started_pid("worker 1"), signal.SIGKILL)
        os.kill(pid_in(up.wait_for("worker 1 exited")), signal.SIGKILL)
        output = up.wait_for_exit()
    finally:
        if up.process.poll() is None:
            up.stop()
    assert up.process.returncode == 1
    assert "worker 1 is in a crash loop: exited (signal SIGKILL) 2 times within 60 s" in output
    assert processes_of(data_dir) == []


def test_ledger_up_stops_at_once_when_a_child_dies_while_starting(server_dir, db_url, redis_url):
    """The API's port is taken after `ledger up` checked it (once it wrote servers.json, before it migrates):
    the API dies on start."""
    data_dir = server_dir / "data"
    port = free_port()
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url, LEDGER_DATA_DIR=str(data_dir))
    started = time.monotonic()
    up = subprocess.Popen(
        [LEDGER, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with socket.socket() as taken:
        poll(lambda: (data_dir / "servers.json").exists() or up.poll() is not None, 30, "servers.json written")
        taken.bind(("127.0.0.1", port))
        taken.listen()
        _, stderr = up.communicate(timeout=60)
    assert up.returncode != 0
    assert "api exited (exit code" in stderr and "while starting" in stderr, stderr[-2000:]
    assert time.monotonic() - started < 30
    assert processes_of(data_dir) == []


def test_the_send_walkthrough_with_ledger_up_and_its_mock_providers(server_dir, db_url, redis_url):
    """The README's walkthrough: a reply through each kind of provider, a Twilio delivery callback."""
    data_dir = server_dir / "data"
    mock_port = free_port()
    up = LedgerUp(
        data_dir,
        "--mock-providers",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        LEDGER_MOCK_PROVIDERS_PORT=str(mock_port),
    )
    mock_url = f"http://127.0.0.1:{mock_port}"
    try:
        assert f"mock providers: {mock_url}\n" in up.output
        with httpx.Client(base_url=up.url, timeout=30) as client:
            tenant = create_company(client, operator_token=up.token)
            sms = create_channel(client, tenant)
            twilio = create_channel(
                client,
                tenant,
                kind="twilio",
                address="+18045550111",
                webhook_secret="twilio-auth-token-0123456789",
                credentials={"account_sid": "AC" + "5a" * 16},
            )
            httpx.put(f"{mock_url}/_callbacks", json={"statuses": ["sent", "delivered"]}).raise_for_status()
            ids = [
                queue_message(client, tenant, channel, "+18045551234").json()["message_id"] for channel in (sms, twilio)
            ]

            def statuses() -> list[str | None]:
                return [read_message(client, tenant, message_id).get("status") for message_id in ids]

            poll(lambda: statuses() == ["sent", "delivered"], timeout=30, what="the sends")
        logged = httpx.get(f"{mock_url}/_requests").json()
        assert sorted((entry["provider"], entry["idempotency_key"]) for entry in logged) == sorted(
            zip(["sms", "twilio"], ids, strict=True)
        )
    finally:
        up.stop()
    assert processes_of(data_dir) == []
