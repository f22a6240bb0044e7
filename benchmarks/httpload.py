"""HTTP load for the benchmarks: `wrk` when it is installed, else N keep-alive connections of a small
asyncio HTTP/1.1 client, in a process of its own (so the client's CPU is not the server's).

The client speaks just enough HTTP/1.1 for the ledger and its baselines (Content-Length or chunked
bodies, keep-alive); it is several times cheaper per request than httpx.AsyncClient, which on a 2-core
machine would otherwise be what the ceiling measures. Every target of a run gets the same client.

A load is described by a `Load`; `run_load()` returns a `LoadResult` (requests/s and latencies of the
measured part, after a warm-up). Webhook loads sign every body with a fresh provider message id.
"""

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from benchmarks.client import TIMESTAMP, sender

WRK_THREADS = 2


@dataclass
class Load:
    url: str  # the target's base URL
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 32
    seconds: float = 10.0
    warmup_seconds: float = 1.0
    # webhooks: a signed SMS body per request, each with a new provider message id
    webhook_secret: str | None = None
    webhook_address: str | None = None
    senders: int = 1000


@dataclass
class LoadResult:
    requests: int
    errors: int  # transport errors and answers outside 2xx
    seconds: float
    p50: float  # seconds
    p99: float
    statuses: dict[str, int]
    client: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def quantiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 of the latencies (seconds); NaN without samples."""
    if not latencies:
        return float("nan"), float("nan")
    if len(latencies) == 1:
        return latencies[0], latencies[0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98]


# -- the asyncio client -----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        """(status, body); reconnects first if the server closed the connection, and once more if a
        kept-alive connection turns out closed before any byte of the answer (the server's idle timeout
        raced the request, which it never read)."""
        reused = self.writer is not None and not self.writer.is_closing() and not self.reader.at_eof()
        if not reused:
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            return await self._response()
        except (asyncio.IncompleteReadError, ConnectionResetError) as error:
            self.close()
            if reused and not getattr(error, "partial", b""):
                return await self.request(method, path, headers, body)
            raise
        except BaseException:
            self.close()
            raise

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    async def _chunked(self) -> bytes:
        chunks = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readuntil(b"\r\n")  # no trailers are sent to us
        return b"".join(chunks)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Connections to one server, made as needed and reused."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.idle: list[Connection] = []

    @asynccontextmanager
    async def connection(self):
        connection = self.idle.pop() if self.idle else Connection(self.host, self.port)
        try:
            yield connection
        finally:
            self.idle.append(connection)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
        async with self.connection() as connection:
            return await connection.request(method, path, headers, body)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def webhook_requests(load: Load, prefix: str):
    """(headers, body) for each request: a signed SMS with a provider message id never used before."""
    secret = load.webhook_secret.encode()
    for n in itertools.count():
        payload = {
            "from": sender(n % load.senders),
            "to": load.webhook_address,
            "type": "sms",
            "messaging_provider_id": f"{prefix}-{n}",
            "body": f"bench message {n}",
            "attachments": None,
            "timestamp": TIMESTAMP,
        }
        raw = orjson.dumps(payload)
        signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        yield {**load.headers, "Content-Type": "application/json", "X-Ledger-Signature": signature}, raw


async def drive(load: Load) -> LoadResult:
    """Runs the load on this event loop: warm-up, then the measured stretch."""
    if load.webhook_secret:
        requests = webhook_requests(load, uuid.uuid4().hex[:12])
    else:
        requests = itertools.repeat((load.headers, b""))
    latencies: list[float] = []
    statuses: Counter = Counter()
    started = time.perf_counter()
    measure_from = started + load.warmup_seconds
    stop_at = measure_from + load.seconds

    async def one_connection() -> None:
        connection = Connection(*_host_port(load.url))
        try:
            while (now := time.perf_counter()) < stop_at:
                headers, body = next(requests)
                try:
                    status, _ = await connection.request(load.method, load.path, headers, body)
                    key = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    key = type(error).__name__
                    await asyncio.sleep(0.01)  # a refused connection must not spin
                done = time.perf_counter()
                if now >= measure_from and done <= stop_at:
                    latencies.append(done - now)
                    statuses[key] += 1
        finally:
            connection.close()

    await asyncio.gather(*(one_connection() for _ in range(load.connections)))
    errors = sum(count for status, count in statuses.items() if not status.startswith("2"))
    p50, p99 = quantiles(latencies)
    return LoadResult(len(latencies), errors, load.seconds, p50, p99, dict(statuses), "asyncio")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port or 80


# -- wrk ---------------------------------------------------------------------------------------------

WRK_SCRIPT = """
-- requests from a file of "method<TAB>path<TAB>headers as JSON-ish k=v pairs<TAB>body" lines, split between threads
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  requests = {}
  local threads, n = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if n % threads == id - 1 then
      local method, path, signature, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$")
      local headers = {}
      for name, value in (args[3] or ""):gmatch("([^=|]+)=([^|]*)") do headers[name] = value end
      if signature ~= "" then
        headers["Content-Type"] = "application/json"
        headers["X-Ledger-Signature"] = signature
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
    n = n + 1
  end
  index = 0
end
function request()
  index = index % #requests + 1
  return requests[index]
end
"""
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _wrk_request_file(load: Load, directory: Path, count: int) -> Path:
    path = directory / f"requests-{uuid.uuid4().hex[:8]}.tsv"
    with path.open("wb") as out:
        if load.webhook_secret:
            for _, (headers, body) in zip(range(count), webhook_requests(load, uuid.uuid4().hex[:12]), strict=False):
                out.write(f"{load.method}\t{load.path}\t{headers['X-Ledger-Signature']}\t".encode() + body + b"\n")
        else:
            out.write(f"{load.method}\t{load.path}\t\t\n".encode())
    return path


def _wrk_once(load: Load, seconds: float, directory: Path, script: Path) -> str:
    # enough distinct bodies for 6,000 requests/s; past that a webhook would be a duplicate (still 2xx)
    requests = _wrk_request_file(load, directory, int(6000 * max(seconds, 1)) if load.webhook_secret else 1)
    threads = min(WRK_THREADS, load.connections)
    headers = "|".join(f"{name}={value}" for name, value in load.headers.items())
    duration = f"{max(round(seconds), 1)}s"  # wrk takes whole seconds
    # a 60 s timeout, as the asyncio client has none: wrk's default (2 s) would count slow answers as errors
    command = ["wrk", "-t", str(threads), "-c", str(load.connections), "-d", duration, "--timeout", "60s", "--latency"]
    command += ["-s", str(script), load.url, "--", str(requests), str(threads), headers]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def parse_wrk(output: str, seconds: float) -> LoadResult:
    def duration(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(number) * UNITS[unit]

    cuts = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.MULTILINE))
    total = int(re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output).group(1))
    measured = duration("".join(re.search(r"requests in ([\d.]+)(us|ms|s|m)", output).groups()))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    statuses = {"2xx/3xx": total - (int(non_2xx.group(1)) if non_2xx else 0)}
    if errors:
        statuses["errors"] = errors
    return LoadResult(total, errors, measured or seconds, duration(cuts["50"]), duration(cuts["99"]), statuses, "wrk")


def run_wrk(load: Load) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="ledger-bench-wrk-") as directory:
        directory = Path(directory)
        script = directory / "requests.lua"
        script.write_text(WRK_SCRIPT)
        if load.warmup_seconds > 0:
            _wrk_once(load, load.warmup_seconds, directory, script)
        return parse_wrk(_wrk_once(load, load.seconds, directory, script), load.seconds)


# -- entry points ------------------------------------------------------------------------------------


def run_load(load: Load, client: str = "auto") -> LoadResult:
    """The load, from wrk (client "wrk", or "auto" when it is installed) or from the asyncio client in
    a separate process."""
    if client == "wrk" or (client == "auto" and wrk_available()):
        return run_wrk(load)
    answer = subprocess.run(
        [sys.executable, "-m", "benchmarks.httpload"],
        input=json.dumps(asdict(load)),
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{answer.stderr}")
    return LoadResult(**json.loads(answer.stdout))


def main() -> None:
    """The load process: a Load as JSON on stdin, its LoadResult as JSON on stdout."""
    load = Load(**json.loads(sys.stdin.read()))
    print(json.dumps(asdict(asyncio.run(drive(load)))))


if __name__ == "__main__":
    main()
