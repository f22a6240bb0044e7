"""The inbox's live stream on a real server: changes pushed, resumption with Last-Event-ID, heartbeats,
and its end on disconnect, on shutdown and across a lost LISTEN connection."""

import time

import httpx
import orjson
import psycopg
import pytest
from httpx_sse import EventSource, connect_sse

from api.inbox_stream import LISTENER_NAME
from tests.conftest import LiveServer, make_settings
from tests.support import create_channel, create_company, poll, post_signed, sms_payload
from tests.test_inbox import (
    HEARTBEAT_SECONDS,
    at,
    command,
    create_user,
    inbox_of,
    ok,
    project,
    projecting,
    recorded_at,
    transfer,
)


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    return make_settings(db_url, redis_url, tmp_path, sse_heartbeat_seconds=HEARTBEAT_SECONDS)


class Changes:
    """A stream's events, read on demand. httpx-sse also dispatches an empty event at a comment once
    an id was seen (the spec says not to): those are heartbeats, skipped here."""

    def __init__(self, source: EventSource) -> None:
        self.events = (event for event in source.iter_sse() if event.data)

    def next(self, count: int) -> list[tuple[int, dict]]:
        received = []
        for event in self.events:
            received.append((int(event.id), orjson.loads(event.data)))
            if len(received) == count:
                return received
        raise AssertionError(f"the stream ended after {received}")

    def rest(self) -> list:
        return list(self.events)


def stream_client(server_url: str) -> httpx.Client:
    # A read timeout well above the heartbeat: a silent stream fails the test instead of hanging it.
    return httpx.Client(base_url=server_url, timeout=httpx.Timeout(10, read=5 * HEARTBEAT_SECONDS + 5))


def hub(server: LiveServer):
    return server.server.config.app.state.inbox_hub


def test_the_stream_pushes_changes_and_resumes_after_last_event_id(runtime):
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        channel = create_channel(client, tenant)
        agent = create_user(client, tenant)
        mine = ok(post_signed(client, channel, sms_payload(channel, sender="+18045550001")))["conversation_id"]
        theirs = ok(post_signed(client, channel, sms_payload(channel, sender="+18045550002")))["conversation_id"]
        position = transfer(client, tenant, mine, agent.admin_user_id)
        project(runtime)
        inbox_of(client, agent, min_position=position)

        with projecting(runtime), stream_client(server.url) as streaming:
            with connect_sse(streaming, "GET", "/v1/inbox/stream", headers=agent.auth) as source:
                changes = Changes(source)
                assert source.response.status_code == 200
                assert source.response.headers["content-type"].startswith("text/event-stream")
                before = runtime.ledger.head_position()
                ok(post_signed(client, channel, sms_payload(channel, sender="+18045550002")))  # the bot's
                sent = time.monotonic()
                webhook = ok(post_signed(client, channel, sms_payload(channel, sender="+18045550001", body="Hi")))
                [(event_id, data)] = changes.next(1)
                assert time.monotonic() - sent < 5
                assert before < event_id <= webhook["position"]
                assert data["conversation_id"] == mine and data["change"] == "updated"
                assert data["cause"] == "InboundMessageReceived" and data["unread_count"] == 2
                assert data["owner_id"] == agent.admin_user_id and data["open_count"] == 1
                assert at(data["waiting_since"]) == recorded_at(client, tenant, mine, 1)
                last_seen = event_id
            poll(lambda: hub(server).stream_count == 0, what="the server ending the stream of a gone client")

            # Missed while disconnected: an inbound message, a read, a conversation transferred in.
            missed = [ok(post_signed(client, channel, sms_payload(channel, sender="+18045550001", body="Again")))]
            missed.append(command(client, agent, mine, "read"))
            missed.append({"position": transfer(client, tenant, theirs, agent.admin_user_id)})
            resume = {**agent.auth, "Last-Event-ID": str(last_seen)}
            with connect_sse(streaming, "GET", "/v1/inbox/stream", headers=resume) as source:
                changes = Changes(source)
                replayed = changes.next(3)
                ids = [event_id for event_id, _ in replayed]
                assert ids == sorted(set(ids)) and ids[0] > last_seen
                bounds = [last_seen] + [change["position"] for change in missed]
                assert all(low < id_ <= high for id_, low, high in zip(ids, bounds[:-1], bounds[1:], strict=True))
                causes = [(data["cause"], data["change"], data["conversation_id"]) for _, data in replayed]
                assert causes == [
                    ("InboundMessageReceived", "updated", mine),
                    ("ReadMarked", "updated", mine),
                    ("OwnerTransferred", "added", theirs),
                ]
                assert [data["unread_count"] for _, data in replayed] == [3, 0, 2]
                assert replayed[-1][1]["open_count"] == 2
                # Nothing twice: the next event is the next change, live.
                closed = command(client, agent, theirs, "close")
                [(event_id, data)] = changes.next(1)
                assert ids[-1] < event_id == closed["position"]
                assert (data["change"], data["conversation_id"], data["open_count"]) == ("removed", theirs, 1)

            # Last-Event-ID as a query parameter, for clients that cannot set headers.
            with connect_sse(
                streaming, "GET", "/v1/inbox/stream", params={"last_event_id": ids[1]}, headers=agent.auth
            ) as source:
                changes = Changes(source)
                assert [event_id for event_id, _ in changes.next(2)] == [ids[2], closed["position"]]


def test_heartbeats_keep_an_idle_stream_open(runtime):
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        with (
            stream_client(server.url) as streaming,
            streaming.stream("GET", "/v1/inbox/stream", headers=tenant.auth) as response,
        ):
            assert response.status_code == 200
            comments = []
            for line in response.iter_lines():
                if line.startswith(":"):
                    comments.append(line)
                if len([comment for comment in comments if "heartbeat" in comment]) == 2:
                    break
            assert comments[0].startswith(": inbox changes after position")


def test_streams_end_when_the_server_shuts_down(runtime):
    server = LiveServer(runtime).__enter__()
    try:
        client = httpx.Client(base_url=server.url, timeout=30)
        tenant = create_company(client)
        with (
            stream_client(server.url) as streaming,
            connect_sse(streaming, "GET", "/v1/inbox/stream", headers=tenant.auth) as source,
        ):
            poll(lambda: hub(server).stream_count == 1, what="the stream being served")
            asked = time.monotonic()
            server.__exit__(None, None, None)
            assert not server.thread.is_alive(), "uvicorn still waits for the open stream"
            assert time.monotonic() - asked < 5
            with pytest.raises(httpx.RemoteProtocolError):  # cut off after the grace period; clients reconnect
                Changes(source).rest()
    finally:
        server.server.should_exit = True
        server.thread.join(timeout=10)


def test_the_stream_survives_a_lost_listen_connection(runtime, settings):
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = create_company(client)
        channel = create_channel(client, tenant)
        conversation = ok(post_signed(client, channel, sms_payload(channel)))["conversation_id"]
        transfer(client, tenant, conversation, tenant.admin_user_id)
        project(runtime)  # the transfer's change is history, not the first change the stream sends
        with (
            projecting(runtime),
            stream_client(server.url) as streaming,
            connect_sse(streaming, "GET", "/v1/inbox/stream", headers=tenant.auth) as source,
        ):
            changes = Changes(source)
            poll(lambda: hub(server).connections == 1, what="the LISTEN connection")
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                killed = conn.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
                    [LISTENER_NAME],
                ).fetchall()
            assert killed == [(True,)]
            poll(lambda: hub(server).connections == 2 and hub(server).listening, what="listening again")
            webhook = ok(post_signed(client, channel, sms_payload(channel, body="Still there?")))
            [(event_id, data)] = changes.next(1)
            assert event_id <= webhook["position"] and data["cause"] == "InboundMessageReceived"
