"""The baselines the ledger's API is measured against, each a uvicorn factory served like `ledger api`
(its own process, uvicorn's defaults):

- `ceiling_app`: the CEILING, a bare FastAPI endpoint that parses the same SMS webhook into a pydantic
  model and answers; and bare GETs that answer stored JSON bytes (what a read of the ledger answered).
- `naive_app`: the FLOOR, the naive event-sourced endpoint: FastAPI and a plain `eventsourcing`
  Application on PostgreSQL that saves one new aggregate with one event per request.

    uv run uvicorn --factory benchmarks.baselines:ceiling_app
    BENCH_NAIVE_DATABASE_URL=postgresql://... uv run uvicorn --factory benchmarks.baselines:naive_app
"""

import os
from datetime import datetime
from pathlib import Path

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

from api.runtime import postgres_env

READ_BODIES = "BENCH_READ_BODIES"  # a JSON file {path: body} the ceiling answers GETs from
NAIVE_DATABASE = "BENCH_NAIVE_DATABASE_URL"


class SmsWebhook(BaseModel):
    sender: str = Field(alias="from")
    to: str
    type: str
    messaging_provider_id: str
    body: str
    attachments: list[str] | None = None
    timestamp: datetime


def ceiling_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/webhooks/{channel_id}", status_code=201)
    async def receive(channel_id: str, payload: SmsWebhook) -> dict:
        return {"channel_id": channel_id, "provider_message_id": payload.messaging_provider_id}

    bodies = orjson.loads(Path(os.environ[READ_BODIES]).read_bytes()) if os.environ.get(READ_BODIES) else {}
    for path, body in bodies.items():
        app.add_api_route(path, answering(body), methods=["GET"])
    return app


def answering(body) -> object:
    """A GET answering the body, serialized once: the HTTP stack alone (FastAPI's jsonable_encoder on a
    dict would cost more than the ledger's response models, and no longer be a ceiling)."""
    raw = orjson.dumps(body)

    async def read() -> Response:
        return Response(raw, media_type="application/json")

    return read


class Message(Aggregate):
    @event("Received")
    def __init__(self, channel_id: str, sender: str, provider_message_id: str, body: str, sent_at: str) -> None:
        self.channel_id = channel_id
        self.sender = sender
        self.provider_message_id = provider_message_id
        self.body = body
        self.sent_at = sent_at


class NaiveWebhooks(Application):
    """eventsourcing as its documentation shows it: its own Postgres recorder, defaults otherwise."""


def naive_env(database_url: str) -> dict[str, str]:
    return {**postgres_env(database_url), "CREATE_TABLE": "y"}


def naive_app() -> FastAPI:
    application = NaiveWebhooks(env=naive_env(os.environ[NAIVE_DATABASE]))
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/webhooks/{channel_id}", status_code=201)
    def receive(channel_id: str, payload: SmsWebhook) -> dict:
        message = Message(
            channel_id, payload.sender, payload.messaging_provider_id, payload.body, payload.timestamp.isoformat()
        )
        recordings = application.save(message)
        return {"message_id": str(message.id), "position": recordings[-1].notification.id}

    return app
