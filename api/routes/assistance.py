"""Assistance requests, routed by topic to one of the company's channels, and the topics' routing rules."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field

from api.dependencies import (
    Caller,
    MinPosition,
    json_body,
    parse_id,
    read_one,
    runtime_of,
)
from api.models import RequestBody
from api.routes.sends import IdempotencyKey
from api.schemas import (
    AUTHENTICATED,
    POSITIONED,
    WITH_BODY,
    AssistanceQueuedOut,
    AssistanceRequestOut,
    RoutingRuleOut,
    request_body,
)
from projections import assistance

router = APIRouter(prefix="/v1", tags=["assistance"])
TOPIC_DESCRIPTION = "a slug: 1 to 64 lower-case letters, digits, dashes or underscores"


class NewAssistanceRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"topic": "sales", "description": "A customer asks for a demo"}]}
    )

    topic: str = Field(max_length=64, description=TOPIC_DESCRIPTION)
    description: str = Field(min_length=1, max_length=4000)
    conversation_id: UUID | None = Field(default=None, description="the conversation it is about, of the company")


class NewRoutingRule(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel_id": "00000000-0000-0000-0000-000000000000"}]})

    channel_id: UUID = Field(description="a channel of the company that can send")
    to: str | None = Field(
        default=None, min_length=1, max_length=320, description="where to send on that channel; default: its address"
    )


@router.post(
    "/assistance-requests",
    status_code=202,
    responses={
        202: {"description": "queued"},
        200: {"model": AssistanceQueuedOut, "description": "the Idempotency-Key was used before: that request"},
        **AUTHENTICATED,
        **WITH_BODY,
    },
    openapi_extra=request_body({"application/json": [NewAssistanceRequest]}),
    description="Routes the request by its topic (the company's rule, else the default: sales to its slack "
    "channel, pricing to its email channel) and queues its send.",
)
def request_assistance(
    request: Request,
    response: Response,
    caller: Caller,
    body: Annotated[NewAssistanceRequest, json_body(NewAssistanceRequest)],
    idempotency_key: IdempotencyKey = None,
) -> AssistanceQueuedOut:
    queued = runtime_of(request).ledger.request_assistance(
        caller, body.topic, body.description, body.conversation_id, idempotency_key
    )
    response.status_code = 202 if queued.created else 200
    return AssistanceQueuedOut(
        id=queued.request_id,
        topic=queued.topic,
        channel_id=queued.channel_id,
        status=queued.status,
        position=queued.position,
    )


@router.get(
    "/assistance-requests/{request_id}",
    response_model=AssistanceRequestOut,
    responses={**POSITIONED, **AUTHENTICATED},
)
async def get_assistance_request(
    request_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    request_uuid = str(parse_id(request_id, "assistance request"))
    return await read_one(
        runtime_of(request),
        response,
        [assistance.PROJECTION.name],
        min_position,
        "assistance request",
        assistance.get_request,
        caller.company_id,
        request_uuid,
    )


@router.put(
    "/routing/topics/{topic}",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewRoutingRule]}),
    description=f"Sets where the topic's assistance requests go (topic: {TOPIC_DESCRIPTION}).",
)
def set_routing_rule(
    topic: str, request: Request, caller: Caller, body: Annotated[NewRoutingRule, json_body(NewRoutingRule)]
) -> RoutingRuleOut:
    rule = runtime_of(request).ledger.set_routing_rule(caller, topic, body.channel_id, body.to)
    return RoutingRuleOut(topic=rule.topic, channel_id=rule.channel_id, to=rule.to, position=rule.position)
