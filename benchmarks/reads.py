"""Read latency with many conversations: GET /v1/conversations (the first page, 50) and GET /v1/inbox (an
agent's, 200 of its conversations), beside bare endpoints answering the same bodies.

    uv run ledger bench read [--conversations 10000] [--agents 10] [--seconds 5] [--connections 4] [--rounds 3]

Appends `--conversations` conversations (one inbound SMS each, handed round-robin to `--agents` agents;
benchmarks/seed.py), waits for the worker to project them, then loads each read from `--connections`
keep-alive connections for `--seconds`, in turn with:

- ceiling: a bare FastAPI GET answering, from memory, the very body the ledger answered;
- query: the read model's query alone, in this process, one call after another (no HTTP, no auth);
- ledger: `ledger api`, authenticated by the company's key (the list) or the agent's (the inbox).
"""

import argparse
import json
import tempfile

import httpx

from api.runtime import build_runtime
from benchmarks.baselines import READ_BODIES
from benchmarks.common import (
    Column,
    Ratio,
    Row,
    ServerProcess,
    deployment,
    ledger_command,
    machine,
    print_report,
    started,
    time_calls,
    uvicorn_command,
    wait_projected,
)
from benchmarks.httpload import Load, quantiles, run_load
from benchmarks.seed import company_with_channel, seed_conversations
from projections import inbox, summaries

LIST, INBOX = "/v1/conversations", "/v1/inbox"
QUERY_CALLS = 200


def run(options: argparse.Namespace, database_url: str, redis_url: str) -> None:
    with deployment(server=database_url, redis=redis_url) as (env, settings, worker):
        runtime = build_runtime(settings)
        try:
            seeded = company_with_channel(runtime.ledger, agents=options.agents)
            owners = [user_id for user_id, _ in seeded.agents]
            seed_conversations(runtime.ledger, seeded, options.conversations, 1, owners)
            head, waited = wait_projected(runtime, worker, timeout=1800)
            if waited is None:
                raise SystemExit(f"the worker did not project the {head} events within 30 minutes")
            company_id, (agent_id, agent_key) = seeded.company.company_id, seeded.agents[0]
            keys = {LIST: seeded.admin_key, INBOX: agent_key}
            rows, items = measure(options, env, keys, runtime, company_id, agent_id)
        finally:
            runtime.close()
    columns = [
        Column("req/s", "rate", per_round=True),
        Column("p50", "p50", "ms"),
        Column("p99", "p99", "ms"),
        Column("errors", "errors", "n"),
    ]
    ratios = []
    for path in (LIST, INBOX):
        ratios.append(Ratio(f"GET {path}", f"bare GET {path}, same body", "rate", f"{path} ledger/ceiling req/s"))
        ratios.append(Ratio(f"GET {path}", f"bare GET {path}, same body", "p50", f"{path} ledger/ceiling p50"))
    notes = [
        f"{options.conversations} conversations over {options.agents} agents ({head} events, projected "
        f"{waited:.1f} s after the last append); {options.connections} connections, {options.seconds:g} s a "
        f"target and round; items answered: {', '.join(f'{path} {n}' for path, n in items.items())}; query rows: "
        f"{QUERY_CALLS} calls one after another, req/s = 1/mean; {machine()}"
    ]
    print_report("ledger bench read", rows, columns, ratios, notes)


def measure(options, env, keys: dict[str, str], runtime, company_id: str, agent_id: str) -> tuple[list[Row], dict]:
    """The rows, and how many items each read answered."""
    queries = {
        LIST: lambda conn: summaries.list_summaries(conn, company_id, {}, 50, None),
        INBOX: lambda conn: inbox.inbox_of(conn, company_id, agent_id, 200),
    }
    with started(ServerProcess("ledger api", ledger_command("api"), env)) as (api,):
        bodies = {}
        with httpx.Client(base_url=api.url, timeout=60) as http:
            for path, key in keys.items():
                bodies[path] = http.get(path, headers=auth(key)).raise_for_status().json()
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="ledger-bench-") as stored:
            json.dump(bodies, stored)
            stored.flush()
            ceiling_env = {**env, READ_BODIES: stored.name}
            ceiling = ServerProcess("ceiling", uvicorn_command("benchmarks.baselines:ceiling_app"), ceiling_env)
            with started(ceiling):
                rows = rounds(options, keys, runtime, queries, api, ceiling)
    return rows, {path: len(body["items"]) for path, body in bodies.items()}


def rounds(options, keys, runtime, queries, api: ServerProcess, ceiling_server: ServerProcess) -> list[Row]:
    rows = []
    for path in (LIST, INBOX):
        ceiling = Row(f"bare GET {path}, same body", "ceiling")
        query = Row(f"{path} read model query only", "query")
        ledger = Row(f"GET {path}", "ledger")
        rows += [ceiling, query, ledger]
        for _ in range(options.rounds):
            for row, server in ((ceiling, ceiling_server), (ledger, api)):
                load = Load(
                    url=server.url,
                    path=path,
                    headers=auth(keys[path]),
                    connections=options.connections,
                    seconds=options.seconds,
                    warmup_seconds=min(1.0, options.seconds / 5),
                )
                result = run_load(load, options.client)
                server.check_alive(" under load")
                row.add(rate=result.rate, p50=result.p50, p99=result.p99, errors=result.errors)

            def one_query(query_for_path=queries[path]) -> None:
                with runtime.pool.connection() as conn:
                    query_for_path(conn)

            durations = time_calls(one_query, QUERY_CALLS)
            p50, p99 = quantiles(durations)
            query.add(rate=len(durations) / sum(durations), p50=p50, p99=p99, errors=0)
    return rows


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


if __name__ == "__main__":
    from benchmarks.bench import main

    main("read")
