"""GET /metrics: Prometheus text with requests by route template, webhooks and sends by outcome, and the
projections' positions, lag and errors and the outbox's depth read from PostgreSQL at scrape time."""

from dataclasses import replace

import httpx
import orjson
import prometheus_client
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool

from api.metrics import UNMATCHED, Metrics
from api.runtime import build_runtime
from tests.conftest import make_settings
from tests.support import create_channel, create_company, post_signed, queue_message, sign, sms_payload

MAX_BODY_BYTES = 16 * 1024
WEBHOOK_ROUTE = "/v1/webhooks/{channel_id}"


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    return make_settings(db_url, redis_url, tmp_path, max_body_bytes=MAX_BODY_BYTES)


class Scrape:
    """One scrape of /metrics, parsed: sample name and labels -> value."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """The samples of `name` summed by the value of one label."""
        sums: dict[str, float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == name:
                key = dict(labels)[label]
                sums[key] = sums.get(key, 0) + value
        return sums

    def label_values(self, label: str) -> set[str]:
        return {dict(labels)[label] for (_, labels) in self.samples if label in dict(labels)}


def scrape(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(response.text)


def tracked_positions(db_url: str) -> dict[str, tuple[int, bool]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select name, position, error is not null from projection_tracking").fetchall()
    return {name: (position, failed) for name, position, failed in rows}


def outbox_rows(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select count(*) from outbox").fetchone()[0]


def caught_up(client: httpx.Client, work) -> dict:
    """/ready once every projection has reached the log's head."""
    for _ in range(20):
        work()
        ready = client.get("/ready").json()
        if all(projection["lag"] == 0 for projection in ready["projections"].values()):
            return ready
    raise AssertionError(f"the projections did not catch up: {ready}")


def test_requests_webhooks_and_sends_are_counted_by_route_and_outcome(client, runtime, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    first = sms_payload(channel)
    assert post_signed(client, channel, first).status_code == 201
    assert post_signed(client, channel, sms_payload(channel, body="Again")).status_code == 201
    duplicate = post_signed(client, channel, first)
    assert duplicate.status_code == 200 and duplicate.json()["deduplicated"] is True
    raw = orjson.dumps(sms_payload(channel))
    forged = client.post(
        f"/v1/webhooks/{channel.id}",
        content=raw,
        headers={"Content-Type": "application/json", "X-Ledger-Signature": sign("not-the-secret", raw)},
    )
    assert forged.status_code == 401 and forged.json()["error_code"] == "invalid_signature"
    unknown_channel = replace(channel, id="00000000-0000-0000-0000-000000000001")
    nowhere = post_signed(client, unknown_channel, sms_payload(channel))
    assert nowhere.status_code == 404 and nowhere.json()["error_code"] == "not_found"
    too_large = post_signed(client, channel, sms_payload(channel, body="x" * MAX_BODY_BYTES))
    assert too_large.status_code == 413
    assert client.get(f"/no/such/{channel.id}").status_code == 404
    assert client.delete(f"/v1/webhooks/{channel.id}").status_code == 405

    assert queue_message(client, tenant, channel, to="+18045551234", key="order-42").status_code == 202
    assert queue_message(client, tenant, channel, to="+18045551234", key="order-42").status_code == 200
    conversation_id = duplicate.json()["conversation_id"]
    reply = client.post(f"/v1/conversations/{conversation_id}/messages", json={"body": "Hi"}, headers=tenant.auth)
    assert reply.status_code == 202
    work()
    assert client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth).status_code == 200

    metrics = scrape(client)

    assert metrics.by_label("ledger_webhooks_total", "outcome") == {
        "appended": 2,
        "deduplicated": 1,
        "rejected": 2,  # the 413 never reached the route: the body limit answered it
    }
    assert metrics.value("ledger_webhooks_total", outcome="rejected", error_code="invalid_signature") == 1
    assert metrics.value("ledger_webhooks_total", outcome="rejected", error_code="not_found") == 1
    assert metrics.value("ledger_webhooks_total", outcome="appended", error_code="") == 2
    assert metrics.value("ledger_sends_total", target="address", outcome="queued") == 1
    assert metrics.value("ledger_sends_total", target="address", outcome="idempotent_replay") == 1
    assert metrics.value("ledger_sends_total", target="conversation", outcome="queued") == 1
    assert metrics.value("ledger_sends_total", target="conversation", outcome="idempotent_replay") == 0

    requests = {
        (dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): value
        for (name, labels), value in metrics.samples.items()
        if name == "ledger_http_requests_total"
    }
    assert requests == {
        ("POST", "/v1/companies", "201"): 1,
        ("POST", "/v1/channels", "201"): 1,
        ("POST", WEBHOOK_ROUTE, "201"): 2,
        ("POST", WEBHOOK_ROUTE, "200"): 1,
        ("POST", WEBHOOK_ROUTE, "401"): 1,
        ("POST", WEBHOOK_ROUTE, "404"): 1,
        ("POST", WEBHOOK_ROUTE, "413"): 1,
        ("GET", UNMATCHED, "404"): 1,
        ("DELETE", WEBHOOK_ROUTE, "405"): 1,
        ("POST", "/v1/messages", "202"): 1,
        ("POST", "/v1/messages", "200"): 1,
        ("POST", "/v1/conversations/{conversation_id}/messages", "202"): 1,
        ("GET", "/v1/conversations/{conversation_id}", "200"): 1,
    }
    for (method, route, status), count in requests.items():
        labels = {"method": method, "route": route, "status": status}
        assert metrics.value("ledger_http_request_duration_seconds_count", **labels) == count
        assert metrics.value("ledger_http_request_duration_seconds_bucket", **labels, le="+Inf") == count
        assert metrics.value("ledger_http_request_duration_seconds_sum", **labels) > 0
    assert not any(channel.id in value or conversation_id in value for value in metrics.label_values("route"))

    again = scrape(client)  # the scrape before is counted too, once it has answered
    assert again.value("ledger_http_requests_total", method="GET", route="/metrics", status="200") == 1


def test_projection_positions_lag_errors_and_outbox_depth_come_from_postgresql(client, runtime, work, db_url):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    for body in ("one", "two", "three"):
        assert post_signed(client, channel, sms_payload(channel, body=body)).status_code == 201
    assert queue_message(client, tenant, channel, to="+18045551234").status_code == 202
    assert queue_message(client, tenant, channel, to="+18045551235").status_code == 202

    # Before any worker ran: the lag of every projection is the events it has not applied.
    ready = client.get("/ready").json()
    behind = scrape(client)
    assert behind.value("ledger_head_position") == ready["head_position"] > 0
    assert behind.by_label("ledger_projection_lag", "projection") == {
        name: projection["lag"] for name, projection in ready["projections"].items()
    }
    assert behind.value("ledger_projection_lag", projection="timeline") > 0
    assert behind.value("ledger_outbox_messages") == 0  # not projected yet
    assert behind.value("ledger_postgres_up") == 1

    ready = caught_up(client, work)
    metrics = scrape(client)
    tracked = tracked_positions(db_url)
    positions = metrics.by_label("ledger_projection_position", "projection")
    assert set(positions) == set(runtime.projector.projections) == set(ready["projections"])
    for name, position in positions.items():
        assert position == ready["projections"][name]["position"] == tracked[name][0] == ready["head_position"]
    assert metrics.value("ledger_head_position") == ready["head_position"]
    assert set(metrics.by_label("ledger_projection_lag", "projection").values()) == {0}
    assert set(metrics.by_label("ledger_projection_error", "projection").values()) == {0}
    assert outbox_rows(db_url) == 2
    assert metrics.value("ledger_outbox_messages") == 2
    assert metrics.value("ledger_outbox_due_messages") == 2
    assert metrics.value("ledger_outbox_leased_messages") == 0

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update projection_tracking set error = 'boom' where name = 'summaries'")
        # one message leased by a dispatcher, one backing off after a failed attempt: neither is due
        conn.execute(
            """update outbox set lease_until = now() + interval '1 minute'
               where message_id = (select min(message_id::text)::uuid from outbox)"""
        )
        conn.execute(
            """update outbox set due_at = now() + interval '1 minute'
               where message_id = (select max(message_id::text)::uuid from outbox)"""
        )
    stopped = scrape(client)
    errors = stopped.by_label("ledger_projection_error", "projection")
    assert errors.pop("summaries") == 1
    assert set(errors.values()) == {0}
    assert stopped.value("ledger_outbox_messages") == 2
    assert stopped.value("ledger_outbox_due_messages") == 0
    assert stopped.value("ledger_outbox_leased_messages") == 1


def test_without_postgresql_a_scrape_still_answers_with_postgres_down(runtime):
    unreachable = ConnectionPool(
        "postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1, timeout=0.5, open=True
    )
    try:
        metrics = Scrape(Metrics(runtime.ledger, unreachable, runtime.projector).exposition().decode())
    finally:
        unreachable.close()
    assert metrics.value("ledger_postgres_up") == 0
    assert metrics.value("ledger_head_position") is None
    assert metrics.by_label("ledger_projection_lag", "projection") == {}
    assert metrics.value("ledger_webhooks_total", outcome="appended", error_code="") == 0


def test_each_runtime_has_its_own_registry_and_the_global_one_stays_empty(client, settings):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    assert post_signed(client, channel, sms_payload(channel)).status_code == 201
    other = build_runtime(settings)
    try:
        fresh = Scrape(other.metrics.exposition().decode())
    finally:
        other.close()
    assert fresh.value("ledger_webhooks_total", outcome="appended", error_code="") == 0
    assert fresh.by_label("ledger_http_requests_total", "route") == {}
    assert scrape(client).value("ledger_webhooks_total", outcome="appended", error_code="") == 1
    assert "ledger_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()


def test_metrics_is_documented_as_prometheus_text_without_credentials(client):
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert "security" not in operation
    assert operation["responses"]["200"]["content"]["text/plain"]["schema"]["$ref"] == (
        "#/components/schemas/MetricsText"
    )
