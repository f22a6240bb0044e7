"""Webhook-to-read latency: how long after a webhook is answered its message shows on the conversation's
timeline, at a fixed rate of webhooks.

    uv run ledger bench visibility [--rate 200] [--seconds 10] [--rounds 3] [--poll-ms 50]

Against `ledger api` and a `ledger worker` (the wake-up through Redis, the catch-up, the read), signed
SMS webhooks are sent open-loop at `--rate` per second (each on its own schedule, whatever the previous
ones take) over 1,000 senders. Each round has two modes, one after the other:

- min_position: GET /v1/conversations/{id}?min_position=<the position the webhook answered>, which the
  API holds until the read models have reached it; then the same GET again, the message now visible:
  the read alone, the baseline;
- polling: GET /v1/conversations/{id} without min_position, every --poll-ms, until the message is in it.

The clock starts when the webhook's answer arrives (the append is committed by then) and stops when a
timeline with the message has been read; "sent -> visible" starts when the webhook was sent.
"""

import argparse
import asyncio
import time

import httpx
import orjson

from benchmarks.client import create_channel, create_company, sender, signed_webhook, sms_payload
from benchmarks.common import (
    OPERATOR,
    Column,
    Ratio,
    Row,
    ServerProcess,
    deployment,
    ledger_command,
    machine,
    print_report,
    started,
)
from benchmarks.httpload import Pool, quantiles

SENDERS = 1000
POLL_LIMIT_SECONDS = 30


async def one_webhook(pool, channel, auth, n: int, mode: str, poll_seconds: float, samples: dict) -> None:
    raw, headers = signed_webhook(channel, sms_payload(channel.address, sender(n % SENDERS), f"visible {n}"))
    sent = time.perf_counter()
    status, body = await pool.request("POST", f"/v1/webhooks/{channel.id}", headers, raw)
    answered = time.perf_counter()
    if status != 201:
        samples["errors"].append(status)
        return
    written = orjson.loads(body)
    samples["webhook"].append(answered - sent)
    samples["answered_at"].append(answered)
    path = f"/v1/conversations/{written['conversation_id']}"
    if mode == "min_position":
        path += f"?min_position={written['position']}"
    while True:
        status, body = await pool.request("GET", path, auth)
        if status == 200 and any(m["id"] == written["message_id"] for m in orjson.loads(body)["messages"]):
            break
        # 404: a new conversation not projected yet; 503: min_position not reached within the read budget
        if status not in (200, 404, 503) or time.perf_counter() - answered > POLL_LIMIT_SECONDS:
            samples["errors"].append(status)
            return
        await asyncio.sleep(poll_seconds)
    visible = time.perf_counter()
    samples["visible"].append(visible - answered)
    samples["sent_to_visible"].append(visible - sent)
    if mode == "min_position":  # the same read again, with nothing left to wait for
        before = time.perf_counter()
        await pool.request("GET", path, auth)
        samples["read"].append(time.perf_counter() - before)


async def send_at_rate(url: str, channel, auth, options, mode: str, first: int) -> dict:
    """Webhooks at options.rate for options.seconds, each followed until visible; the samples."""
    pool = Pool(url)
    samples = {"webhook": [], "visible": [], "sent_to_visible": [], "read": [], "errors": [], "answered_at": []}
    count = int(options.rate * options.seconds)
    start = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = start + index / options.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(
            asyncio.create_task(one_webhook(pool, channel, auth, first + index, mode, options.poll_ms / 1000, samples))
        )
    scheduled = time.perf_counter() - start  # when the last webhook was sent: the rate achieved
    samples["achieved_rate"] = (count - 1) / scheduled if count > 1 and scheduled > 0 else float("nan")
    await asyncio.gather(*tasks)
    answered = samples["answered_at"]
    samples["answered_rate"] = len(answered) / (max(answered) - start) if answered else float("nan")
    pool.close()
    return samples


def run(options: argparse.Namespace, database_url: str, redis_url: str) -> None:
    rows = {
        "webhook": Row("POST webhook (answered = committed)", "baseline"),
        "read": Row("GET timeline, message already visible", "baseline"),
        "min_position": Row("committed -> visible, min_position wait", "ledger"),
        "min_position sent": Row("sent -> visible, min_position wait", "ledger"),
        "polling": Row(f"committed -> visible, polling every {options.poll_ms:g} ms", "ledger"),
        "polling sent": Row(f"sent -> visible, polling every {options.poll_ms:g} ms", "ledger"),
    }
    rates, answered = [], []
    with (
        deployment(server=database_url, redis=redis_url) as (env, _, _),
        started(ServerProcess("ledger api", ledger_command("api"), env)) as (api,),
    ):
        with httpx.Client(base_url=api.url, timeout=60) as http:
            tenant = create_company(http, OPERATOR)
            channel = create_channel(http, tenant)
        sent = 0
        for _ in range(options.rounds):
            for mode in ("min_position", "polling"):
                samples = asyncio.run(send_at_rate(api.url, channel, tenant.auth, options, mode, sent))
                sent += int(options.rate * options.seconds)
                rates.append(samples["achieved_rate"])
                answered.append(samples["answered_rate"])
                errors = len(samples["errors"])
                add(rows[mode], samples["visible"], errors)
                add(rows[f"{mode} sent"], samples["sent_to_visible"], errors)
                if mode == "min_position":
                    add(rows["webhook"], samples["webhook"], errors)
                    add(rows["read"], samples["read"], 0)
    columns = [
        Column("p50", "p50", "ms", per_round=True),
        Column("p99", "p99", "ms"),
        Column("max", "max", "ms"),
        Column("samples", "count", "n"),
        Column("errors", "errors", "n"),
    ]
    ratios = [
        Ratio(rows["min_position"].name, rows["read"].name, "p50", "visible (min_position)/read p50"),
        Ratio(rows["polling"].name, rows["read"].name, "p50", "visible (polling)/read p50"),
    ]
    notes = [
        f"{options.rate:g} webhooks/s asked, {min(rates):.0f}-{max(rates):.0f}/s sent, {min(answered):.0f}-"
        f"{max(answered):.0f}/s answered, {options.seconds:g} s a mode and round, {SENDERS} senders; {machine()}"
    ]
    if min(answered) < 0.9 * options.rate:
        notes.append(
            f"warning: the API answered fewer webhooks/s than were sent ({min(answered):.0f} < {options.rate:g}): "
            "it was overloaded and these latencies are mostly queueing; try a lower --rate"
        )
    print_report("ledger bench visibility", list(rows.values()), columns, ratios, notes)


def add(row: Row, latencies: list[float], errors: int) -> None:
    p50, p99 = quantiles(latencies)
    row.add(p50=p50, p99=p99, max=max(latencies, default=float("nan")), count=len(latencies), errors=errors)


if __name__ == "__main__":
    from benchmarks.bench import main

    main("visibility")
