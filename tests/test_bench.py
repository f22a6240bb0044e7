"""`ledger bench` runs end to end and prints the ledger beside its baselines, with the ratios.
Only that the harness works: speed is never asserted."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

LEDGER = str(Path(sys.executable).parent / "ledger")


def bench(postgres_url: str, redis_url: str, data_dir: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["LEDGER_DATA_DIR"] = str(data_dir)
    command = [LEDGER, "bench", *args, "--database-url", postgres_url, "--redis-url", redis_url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def row(output: str, role: str, measure: str) -> str:
    lines = [line for line in output.splitlines() if re.search(rf"\b{role}\b", line) and measure in line]
    assert lines, f"no {role} row for {measure!r} in:\n{output}"
    return lines[0]


def ratio(output: str, label: str) -> float:
    found = re.search(rf"^ratio {re.escape(label)}: (\S+)x$", output, re.MULTILINE)
    assert found, f"no ratio {label!r} in:\n{output}"
    return float(found.group(1))


def test_bench_ingest_prints_the_ledger_beside_its_ceiling_and_floor(postgres_url, redis_url, tmp_path):
    output = bench(postgres_url, redis_url, tmp_path, "ingest", "--seconds", "1", "--rounds", "1", "--connections", "4")
    row(output, "ceiling", "bare FastAPI + pydantic endpoint")
    row(output, "floor", "naive eventsourcing, save per request")
    row(output, "ledger", "signed SMS webhooks")
    for label in ("ledger/ceiling req/s", "ledger/naive req/s"):
        value = ratio(output, label)
        assert math.isfinite(value) and value > 0, f"{label}: nothing was measured\n{output}"


def test_bench_project_prints_catch_ups_beside_reading_the_log(postgres_url, redis_url, tmp_path):
    output = bench(postgres_url, redis_url, tmp_path, "project", "--events", "2000", "--rounds", "1")
    row(output, "ceiling", "read the log")
    row(output, "ceiling", "read and decode the log")
    row(output, "ledger", "timeline catch-up from 0")
    row(output, "ledger", "summaries catch-up from 0")
    for label in ("timeline/decoded-read events/s", "summaries/decoded-read events/s"):
        value = ratio(output, label)
        assert math.isfinite(value) and value > 0, f"{label}: nothing was measured\n{output}"
