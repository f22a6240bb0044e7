"""GET /metrics: Prometheus text, from this process's own registry.

Counted in this API process: HTTP requests by route template, method and status (one ASGI
middleware), inbound webhooks by outcome and sends by outcome (at their routes). Read from
PostgreSQL at scrape time, so the same for every API process: the log's head, each projection's
position, lag and error state, and the outbox's depth (the dispatcher's queue).

Each runtime gets its own CollectorRegistry, built by the composition root: nothing is registered
at import time and several apps in one process (the tests) never share or clash.
"""

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from psycopg_pool import ConnectionPool
from pydantic import RootModel
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import STATUS_AND_CODE
from ledger.application import Ledger
from ledger.errors import LedgerError
from projections.runner import DATABASE_UNAVAILABLE, Projector

if TYPE_CHECKING:
    from api.runtime import Runtime

# Around the specification's targets: reads p99 < 10 ms, ingest p99 < 100 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"  # the route label of a request no route matches: one series, whatever the path
SEND_TARGETS = ("conversation", "address")
# One statement, one pass over the outbox; read before the head, so a lag is never negative.
# "Due" is what the dispatcher would claim now (projections/outbox.py, claim_due).
SCRAPE_SQL = """select
    (select coalesce(jsonb_agg(jsonb_build_array(name, position, error is not null)), '[]')
     from projection_tracking),
    count(*),
    count(*) filter (where due_at <= now() and (lease_until is null or lease_until < now())),
    count(*) filter (where lease_until >= now())
    from outbox"""


class Metrics:
    """This process's metrics: the counters the API records and the scrape-time collector."""

    def __init__(self, ledger: Ledger, pool: ConnectionPool, projector: Projector) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template, method and status code",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhooks = Counter(
            "ledger_webhooks",
            "Inbound provider webhooks, by outcome (appended, deduplicated, rejected) and error code when rejected",
            ["outcome", "error_code"],
            registry=self.registry,
        )
        self.sends = Counter(
            "ledger_sends",
            "Outbound sends asked for, by target (conversation, address) and outcome (queued, idempotent_replay)",
            ["target", "outcome"],
            registry=self.registry,
        )
        for outcome in ("appended", "deduplicated"):
            self.webhooks.labels(outcome, "")
        for target in SEND_TARGETS:
            for outcome in ("queued", "idempotent_replay"):
                self.sends.labels(target, outcome)
        self.registry.register(LedgerCollector(ledger, pool, projector))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def webhook_received(self, deduplicated: bool) -> None:
        self.webhooks.labels("deduplicated" if deduplicated else "appended", "").inc()

    @contextmanager
    def webhook_rejections(self) -> Iterator[None]:
        """Counts an error raised inside as a rejected webhook, with the code it is answered with."""
        try:
            yield
        except Exception as error:
            self.webhooks.labels("rejected", error_code(error)).inc()
            raise

    def send_queued(self, target: str, created: bool) -> None:
        self.sends.labels(target, "queued" if created else "idempotent_replay").inc()


def error_code(error: Exception) -> str:
    """The error_code the API answers this error with (api/errors.py maps them)."""
    if isinstance(error, LedgerError):
        return next((code for cls, (_, code) in STATUS_AND_CODE.items() if isinstance(error, cls)), "internal_error")
    if isinstance(error, DATABASE_UNAVAILABLE):
        return "unavailable"
    return "internal_error"


class LedgerCollector:
    """Figures kept in PostgreSQL, read at scrape time: the same from every process that serves them."""

    def __init__(self, ledger: Ledger, pool: ConnectionPool, projector: Projector) -> None:
        self.ledger = ledger
        self.pool = pool
        self.projector = projector

    def describe(self) -> Iterable[Metric]:
        return self._families()  # the names, without querying at registration

    def collect(self) -> Iterable[Metric]:
        (head, projection_position, lag, error, total, due, leased, up) = self._families()
        try:
            with self.pool.connection() as conn:
                projections, total_rows, due_rows, leased_rows = conn.execute(SCRAPE_SQL).fetchone()
            head_position = self.ledger.head_position()
        except DATABASE_UNAVAILABLE:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        head.add_metric([], head_position)
        for name, position, failed in projections:
            if name not in self.projector.projections:  # a policy this process does not run, as in /ready
                continue
            projection_position.add_metric([name], position)
            lag.add_metric([name], max(head_position - position, 0))
            error.add_metric([name], 1 if failed else 0)
        total.add_metric([], total_rows)
        due.add_metric([], due_rows)
        leased.add_metric([], leased_rows)
        return [head, projection_position, lag, error, total, due, leased, up]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        projection = ["projection"]
        return [
            GaugeMetricFamily("ledger_head_position", "The log's last position (notification id)"),
            GaugeMetricFamily(
                "ledger_projection_position", "The last log position a projection applied", labels=projection
            ),
            GaugeMetricFamily(
                "ledger_projection_lag", "Events in the log a projection has not applied yet", labels=projection
            ),
            GaugeMetricFamily(
                "ledger_projection_error",
                "1 while a projection is stopped by an error (see /ready), else 0",
                labels=projection,
            ),
            GaugeMetricFamily("ledger_outbox_messages", "Outbound messages the dispatcher has still to settle"),
            GaugeMetricFamily("ledger_outbox_due_messages", "Outbox messages due now and not leased by a dispatcher"),
            GaugeMetricFamily("ledger_outbox_leased_messages", "Outbox messages a dispatcher is sending now"),
            GaugeMetricFamily("ledger_postgres_up", "1 if the figures read from PostgreSQL at this scrape are there"),
        ]


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started becomes a 500 outside this middleware

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.request(self.route_of(scope), scope["method"], status, time.perf_counter() - started)

    def route_of(self, scope: Scope) -> str:
        """The template of the route that answered (/v1/conversations/{conversation_id}), never the raw path.
        A request answered before routing (a 413 of the body limit) is matched against the documented
        paths; one that matches none is UNMATCHED."""
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template:
            return template
        if self.templates is None:
            paths = scope["app"].openapi()["paths"] if "app" in scope else {}
            # the fewest parameters first: /v1/users/me before /v1/users/{user_id}
            self.templates = [(compile_path(path)[0], path) for path in sorted(paths, key=lambda p: p.count("{"))]
        path = scope["path"]
        return next((template for regex, template in self.templates if regex.match(path)), UNMATCHED)


class MetricsText(RootModel[str]):
    """Prometheus text exposition format, version 0.0.4."""


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"model": MetricsText, "description": "Prometheus text format 0.0.4"}},
    description="Prometheus metrics of this API process, and the projections' and outbox's figures from PostgreSQL. "
    "No credentials, like /health and /ready: it names route templates and projections, no tenant's data.",
)
def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
