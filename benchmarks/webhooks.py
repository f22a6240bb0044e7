"""Webhook ingestion throughput, side by side with its two floors, in one run.

    uv run python benchmarks/webhooks.py [--requests 2000] [--concurrency 16]

Uses DATABASE_URL / REDIS_URL's servers (default: the local ones), in a fresh database.
Baselines: GET /health over the same HTTP stack (the HTTP floor) and Ledger.ingest()
called in-process (the event-store floor). Quote ratios and medians: this machine is shared.
"""

import argparse
import os
import statistics
import time
import uuid

import httpx
import orjson

from api.runtime import build_runtime
from benchmarks.common import OPERATOR, api_process, deployment, time_each
from ledger.channels import InboundMessage
from tests.support import ChannelInfo, create_channel, create_company, sign, sms_payload

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def report(name: str, rate: float, latencies: list[float], baseline: float | None = None) -> None:
    quantiles = statistics.quantiles(latencies, n=100)
    ratio = f"  {rate / baseline:5.2f}x of webhooks" if baseline else ""
    print(f"{name:<34} {rate:8.0f}/s   p50 {quantiles[49] * 1000:6.1f} ms   p95 {quantiles[94] * 1000:6.1f} ms{ratio}")


def signed_post(http: httpx.Client, channel: ChannelInfo, payload: dict):
    raw = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "X-Ledger-Signature": sign(channel.secret, raw)}
    return lambda: http.post(f"/v1/webhooks/{channel.id}", content=raw, headers=headers).raise_for_status()


def main() -> None:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--requests", type=int, default=2000)
    arguments.add_argument("--concurrency", type=int, default=16)
    options = arguments.parse_args()
    count, concurrency = options.requests, options.concurrency

    with deployment() as (env, settings):
        runtime = build_runtime(settings)
        try:
            with api_process(env) as http:
                tenant = create_company(http, operator_token=OPERATOR)
                channel = create_channel(http, tenant)
                print(f"{count} requests, {concurrency} concurrent clients, {os.cpu_count()} cores\n")

                health_rate, health_latencies = time_each(
                    [lambda: http.get("/health").raise_for_status()] * count, concurrency
                )
                payloads = [sms_payload(channel, sender=f"+1804555{index % 200:04d}") for index in range(count)]
                webhook_rate, webhook_latencies = time_each(
                    [signed_post(http, channel, p) for p in payloads], concurrency
                )
                duplicate_rate, duplicate_latencies = time_each(
                    [signed_post(http, channel, p) for p in payloads], concurrency
                )
                ledger_channel = runtime.ledger.get_channel(uuid.UUID(channel.id))
                messages = [
                    InboundMessage(f"direct-{index}", f"+1804556{index % 200:04d}", channel.address, "hi", "hi")
                    for index in range(count)
                ]
                direct_rate, direct_latencies = time_each(
                    [lambda m=m: runtime.ledger.ingest(ledger_channel, m) for m in messages], concurrency
                )

                report("GET /health (HTTP floor)", health_rate, health_latencies, webhook_rate)
                report("Ledger.ingest() in-process", direct_rate, direct_latencies, webhook_rate)
                report("signed SMS webhooks (new)", webhook_rate, webhook_latencies)
                report("signed SMS webhooks (duplicates)", duplicate_rate, duplicate_latencies, webhook_rate)

                head = runtime.ledger.head_position()
                started = time.perf_counter()
                runtime.projector.wait_for(list(runtime.projector.projections), head, timeout=300)
                print(
                    f"\nworker caught up to position {head} {time.perf_counter() - started:.2f} s after the last write"
                )
                started = time.perf_counter()
                read = runtime.projector.rebuild(runtime.projector.get("timeline"))
                print(f"rebuild of the timeline: {read / (time.perf_counter() - started):.0f} events/s ({read} events)")
        finally:
            runtime.close()


if __name__ == "__main__":
    main()
