"""Inbox stream latency: a webhook committed -> its inbox event received over SSE, end to end.

    uv run python benchmarks/inbox_stream.py [--webhooks 200]

Uses DATABASE_URL / REDIS_URL's servers (default: the local ones), in a fresh database, with a real
`ledger api` and `ledger worker` (the RQ wake-up -> inbox projection -> NOTIFY -> the API's one LISTEN
connection -> the stream). An agent holds a conversation and listens on GET /v1/inbox/stream; webhooks
to that conversation are posted one at a time, each once the previous one's event arrived. The clock
starts when the webhook's answer arrives (the append is committed before it is answered) and stops
when the client has parsed the event whose id is that message's log position.
"""

import argparse
import os
import queue
import statistics
import threading
import time

import httpx
import orjson
from httpx_sse import connect_sse

from benchmarks.client import create_channel, create_company, post_signed, sms_payload
from benchmarks.common import OPERATOR, api_process, deployment

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SENDER = "+18045550199"


def listen(http: httpx.Client, auth: dict, received: queue.Queue, connected: threading.Event, stop) -> None:
    """Puts (perf_counter at receipt, event id, data) for every event of the stream."""
    try:
        with connect_sse(http, "GET", "/v1/inbox/stream", headers=auth) as source:
            connected.set()
            for event in source.iter_sse():
                if event.data:  # httpx-sse dispatches heartbeat comments as empty events once an id was seen
                    received.put((time.perf_counter(), int(event.id), orjson.loads(event.data)))
    except httpx.HTTPError:
        if not stop.is_set():
            raise


def main() -> None:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--webhooks", type=int, default=200)
    count = arguments.parse_args().webhooks

    with deployment() as (env, settings, _):
        stop = threading.Event()
        try:
            with api_process(env) as http:
                tenant = create_company(http, operator_token=OPERATOR)
                channel = create_channel(http, tenant)
                address = channel.address
                agent = http.post("/v1/users", json={"name": "Ann", "role": "agent"}, headers=tenant.auth).json()
                auth = {"Authorization": f"Bearer {agent['api_key']}"}
                first = post_signed(http, channel, sms_payload(address, sender=SENDER)).raise_for_status().json()
                conversation = first["conversation_id"]
                moved = http.post(
                    f"/v1/conversations/{conversation}/transfer", json={"to_user_id": agent["id"]}, headers=tenant.auth
                ).raise_for_status()
                http.get(
                    "/v1/inbox", params={"min_position": moved.json()["position"]}, headers=auth
                ).raise_for_status()

                received: queue.Queue = queue.Queue()
                connected = threading.Event()
                streaming = httpx.Client(base_url=str(http.base_url), timeout=httpx.Timeout(10, read=None))
                listener = threading.Thread(
                    target=listen, args=(streaming, auth, received, connected, stop), daemon=True
                )
                listener.start()
                assert connected.wait(10), "the stream did not open"
                print(f"{count} webhooks, one at a time, to a conversation in the listening agent's inbox")

                latencies, round_trips = [], []
                for index in range(count):
                    sent = time.perf_counter()
                    answer = post_signed(http, channel, sms_payload(address, sender=SENDER, body=f"message {index}"))
                    committed = time.perf_counter()
                    position = answer.raise_for_status().json()["position"]
                    while True:
                        arrived, event_id, data = received.get(timeout=30)
                        if event_id <= position and data["cause"] == "InboundMessageReceived":
                            break
                    latencies.append(arrived - committed)
                    round_trips.append(arrived - sent)

                def line(name: str, values: list[float]) -> str:
                    cuts = statistics.quantiles(values, n=100)
                    return (
                        f"{name:<38} p50 {cuts[49] * 1000:7.1f} ms   p90 {cuts[89] * 1000:7.1f} ms   "
                        f"p99 {cuts[98] * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
                    )

                print(line("webhook committed -> SSE event", latencies))
                print(line("webhook sent -> SSE event", round_trips))
                stop.set()
                streaming.close()
        finally:
            stop.set()


if __name__ == "__main__":
    main()
