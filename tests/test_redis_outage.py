"""No lost writes (guarantee 2): Redis is only a wake-up signal."""

import threading

import httpx
import pytest

from api.embedded import EmbeddedRedis
from api.runtime import build_runtime
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
