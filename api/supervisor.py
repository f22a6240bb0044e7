"""Keeps the children of `ledger up` running: one that dies is started again after a backoff;
one that keeps dying is in a crash loop, which stops everything."""

import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from filelock import FileLock, Timeout

MAX_RESTARTS = 5  # per child within RESTART_WINDOW_SECONDS; dying once more is a crash loop
RESTART_WINDOW_SECONDS = 60
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10
STEADY_SECONDS = 30  # a child that ran this long before dying starts its backoff over
STOP_GRACE_SECONDS = 5


class CrashLoop(Exception):
    pass


class StartRefused(Exception):
    """`ledger up` cannot start as asked; it touched nothing."""


def claim_data_dir(data_dir: Path) -> FileLock:
    """The data dir's lock, held until the process ends (the OS releases it even after a kill)."""
    lock = FileLock(data_dir / "ledger.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StartRefused(f"another `ledger up` is running on the data dir {data_dir}; stop it first") from None
    return lock


def refuse_ports_in_use(host: str, ports: dict[int, str]) -> None:
    """Before any server starts: a port already bound would only make a child die on start. ports: port -> how
    it was chosen, for the message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port, chosen_by in ports.items():
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, port))
            except OSError as error:
                raise StartRefused(f"cannot listen on {host} port {port} ({error.strerror}); {chosen_by}") from None


class Child:
    """One supervised process, under a name for the log ("api", "worker 1")."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts: deque[float] = deque()  # when it was restarted, within the window
        self.quick_deaths = 0  # deaths in a row without running steadily: the backoff's exponent
        self.restart_at: float | None = None  # set while dead, waiting out its backoff

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    def died(self) -> bool:
        return self.restart_at is None and self.process is not None and self.process.poll() is not None

    def exit_status(self) -> str:
        returncode = self.process.returncode
        if returncode >= 0:
            return f"exit code {returncode}"
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:  # a real-time signal has no name
            return f"signal {-returncode}"

    def restarts_within_window(self, now: float) -> int:
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_SECONDS:
            self.restarts.popleft()
        return len(self.restarts)

    def schedule_restart(self, now: float) -> None:
        if now - self.started_at >= STEADY_SECONDS:
            self.quick_deaths = 0
        self.restart_at = now + min(FIRST_BACKOFF_SECONDS * 2**self.quick_deaths, MAX_BACKOFF_SECONDS)
        self.quick_deaths += 1

    def restart(self, now: float) -> None:
        status = self.exit_status()
        self.restarts.append(now)
        self.start()
        print(f"{self.name} exited ({status}); restarted as pid {self.process.pid}", flush=True)


class Supervisor:
    def __init__(self, stopping: threading.Event, max_restarts: int = MAX_RESTARTS) -> None:
        self.children: list[Child] = []
        self.stopping = stopping
        self.max_restarts = max_restarts

    def start(self, children: list[Child]) -> None:
        self.children = children
        for child in children:
            child.start()
            print(f"{child.name} started (pid {child.process.pid})", flush=True)

    def keep_running(self) -> None:
        """Restarts the children that died once their backoff is over; raises CrashLoop."""
        now = time.monotonic()
        for child in self.children:
            # A Ctrl-C reaches the children too: they may exit before `ledger up` stops them.
            if self.stopping.is_set():
                return
            self._supervise(child, now)

    def _supervise(self, child: Child, now: float) -> None:
        if child.died():
            if child.restarts_within_window(now) >= self.max_restarts:
                raise CrashLoop(
                    f"{child.name} is in a crash loop: exited ({child.exit_status()}) {self.max_restarts + 1} "
                    f"times within {RESTART_WINDOW_SECONDS} s; everything was stopped"
                )
            child.schedule_restart(now)
        if child.restart_at is not None and now >= child.restart_at:
            child.restart(now)

    def stop_all(self) -> None:
        running = [child.process for child in self.children if child.process and child.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
