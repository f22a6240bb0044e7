"""Landbot's dialect: `POST /messages/ {topic, description}` asks a person for help on a topic. It is an
assistance request (POST /v1/assistance-requests), routed by the company's topic rules (defaults: sales to
its slack channel, pricing to its email channel) and sent by the dispatcher with its retries."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.demo import DialectCaller
from api.dependencies import json_body, runtime_of
from api.models import RequestBody
from api.routes.sends import IdempotencyKey
from api.schemas import AUTHENTICATED, WITH_BODY, request_body

router = APIRouter(tags=["landbot"])


class LandbotMessage(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"topic": "sales", "description": "A customer wants a demo of the product"}]}
    )

    topic: str = Field(max_length=64, description="sales, pricing, or any topic the company routes")
    description: str = Field(min_length=1, max_length=4000)


class LandbotMessageOut(BaseModel):
    id: UUID = Field(description="the assistance request: GET /v1/assistance-requests/{id} follows its sending")
    topic: str
    description: str
    channel_id: UUID = Field(description="where the topic is routed")
    status: str = Field(description="queued: the dispatcher sends it")
    position: int


@router.post(
    "/messages/",
    status_code=201,
    response_model=LandbotMessageOut,
    responses={
        200: {"model": LandbotMessageOut, "description": "the Idempotency-Key was used before"},
        **AUTHENTICATED,
        **WITH_BODY,
    },
    openapi_extra=request_body({"application/json": [LandbotMessage]}),
    description="An assistance request routed by topic; the same Idempotency-Key answers the same request.",
)
def post_message(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[LandbotMessage, json_body(LandbotMessage)],
    idempotency_key: IdempotencyKey = None,
) -> LandbotMessageOut:
    queued = runtime_of(request).ledger.request_assistance(caller, body.topic, body.description, None, idempotency_key)
    response.status_code = 201 if queued.created else 200  # the same Idempotency-Key: the request made before
    return LandbotMessageOut(
        id=queued.request_id,
        topic=queued.topic,
        description=queued.description,
        channel_id=queued.channel_id,
        status=queued.status,
        position=queued.position,
    )
