"""The write path: the ledger's recorder beside eventsourcing's pipelined one, a webhook at the
body limit, and write latency with Redis running and with Redis stalled (SIGSTOP), in one run.

    uv run python -m benchmarks.write_path [--writes 400]

Uses DATABASE_URL's server (default: the local one) in a fresh database, and starts its own
Redis (so it can stall it) and API process. Quote ratios and medians: this machine is shared.
"""

import argparse
import os
import signal
import statistics
import tempfile
import uuid
from pathlib import Path

import httpx
import orjson
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from psycopg.conninfo import make_conninfo

from api.embedded import EmbeddedRedis
from api.runtime import eventsourcing_env, migrate
from api.settings import Settings
from benchmarks.client import create_channel, create_company, sign, sms_payload
from benchmarks.common import api_process, time_each
from ledger.application import Ledger
from ledger.channels import InboundMessage
from ledger.credentials import SecretBox, new_secret_key

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
LIMIT = 1024 * 1024


def summary(latencies: list[float]) -> str:
    quantiles = statistics.quantiles(latencies, n=100)
    return (
        f"p50 {quantiles[49] * 1000:7.2f} ms   p99 {quantiles[98] * 1000:7.2f} ms   max {max(latencies) * 1000:7.1f} ms"
    )


class PipelinedRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder as it is (pipelined, its lock timeout from POSTGRES_LOCK_TIMEOUT)."""

    def set_write_budget(self, seconds: float) -> None:
        pass


def compare_recorders(settings: Settings, channel_id: str, writes: int) -> None:
    env = eventsourcing_env(settings.database_url, False, 10, 10)
    pipelined = Ledger(
        {**env, "APPLICATION_RECORDER_TOPIC": "benchmarks.write_path:PipelinedRecorder"},
        SecretBox(settings.secret_key),
    )
    ours = Ledger(
        {**env, "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerRecorder"}, SecretBox(settings.secret_key)
    )
    print(f"Ledger.ingest() in-process, {writes} small messages, 8 threads")
    # The ledger's recorder first: it checks versions against the heads it anchors, which the pipelined
    # recorder does not move (streams it appended to afterwards are not the ledger's to write again).
    for name, ledger in (("the ledger's recorder", ours), ("eventsourcing's pipelined recorder", pipelined)):
        channel = ledger.get_channel(uuid.UUID(channel_id))
        messages = [
            InboundMessage(f"{name}-{n}", f"+1804556{n % 300:04d}", channel.address, "hi", "hi") for n in range(writes)
        ]
        rate, latencies = time_each(
            [lambda m=m, ledger=ledger, channel=channel: ledger.ingest(channel, m) for m in messages], 8
        )
        print(f"  {name:<36} {rate:7.0f}/s   {summary(latencies)}")
        ledger.close()


def signed(http: httpx.Client, channel, raw: bytes):
    headers = {"Content-Type": "application/json", "X-Ledger-Signature": sign(channel.secret, raw)}
    return lambda: http.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers).raise_for_status()


def at_the_limit(http: httpx.Client, channel) -> None:
    payload = sms_payload(channel.address, body="")
    raw = orjson.dumps({**payload, "body": "x" * (LIMIT - len(orjson.dumps(payload)))})
    _, alone = time_each([signed(http, channel, raw)], 1)
    bodies = []
    for _ in range(8):
        payload = sms_payload(channel.address, body="")
        bodies.append(orjson.dumps({**payload, "body": "x" * (LIMIT - len(orjson.dumps(payload)))}))
    _, eight = time_each([signed(http, channel, raw) for raw in bodies], 8)
    print(
        f"\na webhook of {len(raw)} bytes (the limit): {alone[0] * 1000:.0f} ms alone; "
        f"eight at once: slowest {max(eight) * 1000:.0f} ms"
    )


def with_redis_stalled(http: httpx.Client, channel, redis: EmbeddedRedis, writes: int) -> None:
    def small_writes():
        payloads = [
            sms_payload(channel.address, sender=f"+1804557{uuid.uuid4().int % 10_000:04d}") for _ in range(writes)
        ]
        return [signed(http, channel, orjson.dumps(payload)) for payload in payloads]

    _, running = time_each(small_writes(), 1)
    redis.process.send_signal(signal.SIGSTOP)
    try:
        _, stalled = time_each(small_writes(), 1)
    finally:
        redis.process.send_signal(signal.SIGCONT)
    print(f"\nsmall webhooks one at a time, Redis running   {summary(running)}")
    print(f"small webhooks one at a time, Redis SIGSTOPped {summary(stalled)}")
    print(f"  median ratio stalled / running: {statistics.median(stalled) / statistics.median(running):.2f}")


def main() -> None:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--writes", type=int, default=400)
    writes = arguments.parse_args().writes
    database = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="ledger-bench-redis-")))
    settings = Settings(
        database_url=make_conninfo(SERVER, dbname=database),
        redis_url=redis.url,
        secret_key=new_secret_key(),
        admin_token="bench-operator",
        data_dir=Path(tempfile.mkdtemp(prefix="ledger-bench-")),
    )
    migrate(settings)
    env = dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis.url,
        LEDGER_ADMIN_TOKEN="bench-operator",
        LEDGER_SECRET_KEY=settings.secret_key,
        LEDGER_DATA_DIR=str(settings.data_dir),
    )
    try:
        with api_process(env) as http:
            tenant = create_company(http, operator_token="bench-operator")
            channel = create_channel(http, tenant)
            compare_recorders(settings, channel.id, writes)
            at_the_limit(http, channel)
            with_redis_stalled(http, channel, redis, min(writes, 100))
    finally:
        redis.stop()
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
