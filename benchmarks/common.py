"""What the benchmarks share: timing calls from a thread pool, and an API process to call."""

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.embedded import free_port


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
