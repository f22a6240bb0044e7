"""Webhook ingestion throughput, beside its ceiling and its floor, measured in one run with one client.

    uv run ledger bench ingest [--seconds 10] [--connections 32] [--rounds 3] [--senders 1000]
    uv run python -m benchmarks.webhooks [the same options]

Signed SMS webhooks, each with a new provider message id, from `--connections` keep-alive connections
for `--seconds` (after a warm-up), against three servers, each its own uvicorn process:

- ceiling: a bare FastAPI endpoint that parses the same body into a pydantic model and answers 201;
- floor: FastAPI and a plain eventsourcing Application on the same PostgreSQL, saving one new aggregate
  with one event per request (benchmarks/baselines.py);
- ledger: `ledger api`, with a `ledger worker` projecting meanwhile, as deployed.

The targets take turns within each round, so the machine's noise falls on all three alike.
"""

import argparse

import httpx

from api.runtime import build_runtime
from benchmarks.baselines import NAIVE_DATABASE
from benchmarks.client import create_channel, create_company
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
    uvicorn_command,
    wait_projected,
)
from benchmarks.httpload import Load, run_load

CEILING = "bare FastAPI + pydantic endpoint"
NAIVE = "naive eventsourcing, save per request"
LEDGER = "signed SMS webhooks, new ids"


def run(options: argparse.Namespace, database_url: str, redis_url: str) -> None:
    with deployment(server=database_url, redis=redis_url) as (env, settings, worker):
        ledger = ServerProcess("ledger api", ledger_command("api"), env)
        ceiling = ServerProcess("ceiling", uvicorn_command("benchmarks.baselines:ceiling_app"), env)
        naive_env = {**env, NAIVE_DATABASE: settings.database_url}
        naive = ServerProcess("naive eventsourcing", uvicorn_command("benchmarks.baselines:naive_app"), naive_env)
        with started(ceiling, naive, ledger):
            with httpx.Client(base_url=ledger.url, timeout=60) as http:
                channel = create_channel(http, create_company(http, OPERATOR))
            rows = [
                (Row(CEILING, "ceiling"), ceiling),
                (Row(NAIVE, "floor"), naive),
                (Row(LEDGER, "ledger"), ledger),
            ]
            client = ""
            for _ in range(options.rounds):
                for row, server in rows:
                    load = Load(
                        url=server.url,
                        path=f"/v1/webhooks/{channel.id}",
                        method="POST",
                        connections=options.connections,
                        seconds=options.seconds,
                        warmup_seconds=min(1.0, options.seconds / 5),
                        webhook_secret=channel.secret,
                        webhook_address=channel.address,
                        senders=options.senders,
                    )
                    result = run_load(load, options.client)
                    server.check_alive(" under load")
                    row.add(rate=result.rate, p50=result.p50, p99=result.p99, errors=result.errors)
                    client = result.client
            lag = projection_lag(settings, worker)
        columns = [
            Column("req/s", "rate", per_round=True),
            Column("p50", "p50", "ms"),
            Column("p99", "p99", "ms"),
            Column("errors", "errors", "n"),
        ]
        ratios = [
            Ratio(LEDGER, CEILING, "rate", "ledger/ceiling req/s"),
            Ratio(LEDGER, NAIVE, "rate", "ledger/naive req/s"),
        ]
        notes = [
            f"{options.connections} connections, {options.seconds:g} s a target and round, client: {client}; "
            f"{machine()}",
            lag,
        ]
        print_report("ledger bench ingest", [row for row, _ in rows], columns, ratios, notes)


def projection_lag(settings, worker) -> str:
    """How long after the last webhook the worker had projected everything."""
    runtime = build_runtime(settings)
    try:
        head, waited = wait_projected(runtime, worker, timeout=300)
    finally:
        runtime.close()
    if waited is None:
        return f"the worker had not projected the {head} events 300 s after the last webhook"
    return f"the worker had projected all {head} events {waited:.2f} s after the last webhook"


if __name__ == "__main__":
    from benchmarks.bench import main

    main("ingest")
