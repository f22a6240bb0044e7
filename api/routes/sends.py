"""Outbound sends, their status, and the providers' status callbacks."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import ConfigDict, Field, model_validator

from api.dependencies import (
    Caller,
    MinPosition,
    json_body,
    parse_id,
    read_one,
    runtime_of,
)
from api.models import RequestBody
from api.routes.webhooks import SIGNATURES, raw_body, signed_url
from api.schemas import (
    AUTHENTICATED,
    POSITIONED,
    WEBHOOK,
    WITH_BODY,
    MessageDetailOut,
    MessageQueuedOut,
    StatusRecordedOut,
    errors,
    request_body,
)
from ledger.channels import WebhookRequest
from ledger.channels._payloads import StatusPayload
from ledger.channels.twilio import FORM, TwilioStatusPayload
from ledger.sending import Queued
from projections import timeline

router = APIRouter(prefix="/v1", tags=["sends"])
MAX_BODY_CHARACTERS = 64 * 1024
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="the same key answers 200 with the message queued the first time",
    ),
]
QUEUED = {
    202: {"description": "queued"},
    200: {"model": MessageQueuedOut, "description": "the Idempotency-Key was used before: that message"},
}


class NewMessage(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"body": "Thanks, we are on it."}]})

    body: str = Field(default="", max_length=MAX_BODY_CHARACTERS)
    attachments: list[Annotated[str, Field(pattern=r"^https?://", max_length=2000)]] = Field(
        default_factory=list, max_length=10, description="URLs of media to attach"
    )

    @model_validator(mode="after")
    def something_to_send(self) -> "NewMessage":
        if not self.body.strip() and not self.attachments:
            raise ValueError("a message needs a body or attachments")
        return self


class NewDirectMessage(NewMessage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"channel_id": "00000000-0000-0000-0000-000000000000", "to": "+18045551234", "body": "Hi"}]
        }
    )

    channel_id: UUID
    to: str = Field(min_length=1, max_length=320)
    type: Literal["sms", "mms", "text"] | None = Field(
        default=None, description="sms/mms for phone channels, else text"
    )


def queued_answer(queued: Queued, response: Response) -> MessageQueuedOut:
    response.status_code = 202 if queued.created else 200
    return MessageQueuedOut(
        message_id=queued.message_id,
        conversation_id=queued.conversation_id,
        status=queued.status,
        position=queued.position,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=202,
    responses={**QUEUED, **AUTHENTICATED, **WITH_BODY, **errors(409)},
    openapi_extra=request_body({"application/json": [NewMessage]}),
)
def send_to_conversation(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    body: Annotated[NewMessage, json_body(NewMessage)],
    idempotency_key: IdempotencyKey = None,
) -> MessageQueuedOut:
    runtime = runtime_of(request)
    queued = runtime.ledger.send_to_conversation(
        caller, parse_id(conversation_id, "conversation"), body.body, body.attachments, idempotency_key
    )
    runtime.metrics.send_queued("conversation", queued.created)
    return queued_answer(queued, response)


@router.post(
    "/messages",
    status_code=202,
    responses={**QUEUED, **AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewDirectMessage]}),
)
def send_to_address(
    request: Request,
    response: Response,
    caller: Caller,
    body: Annotated[NewDirectMessage, json_body(NewDirectMessage)],
    idempotency_key: IdempotencyKey = None,
) -> MessageQueuedOut:
    runtime = runtime_of(request)
    queued = runtime.ledger.send_to_address(
        caller, body.channel_id, body.to, body.body, body.attachments, body.type, idempotency_key
    )
    runtime.metrics.send_queued("address", queued.created)
    return queued_answer(queued, response)


@router.get(
    "/messages/{message_id}",
    response_model=MessageDetailOut,
    response_model_exclude_unset=True,
    responses={**POSITIONED, **AUTHENTICATED},
)
async def get_message(
    message_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    message_uuid = str(parse_id(message_id, "message"))
    return await read_one(
        runtime_of(request),
        response,
        [timeline.PROJECTION.name],
        min_position,
        "message",
        timeline.get_message,
        caller.company_id,
        message_uuid,
    )


@router.post(
    "/webhooks/{channel_id}/status",
    response_model=StatusRecordedOut,
    responses={404: {"description": "no message sent on this channel has this provider message id"}, **WEBHOOK},
    openapi_extra={
        **request_body({"application/json": [StatusPayload], FORM: [TwilioStatusPayload]}),
        **SIGNATURES,
    },
    description="A delivery status callback: Twilio's form on twilio channels, else JSON signed like the webhooks.",
)
def receive_status(channel_id: str, request: Request, body: bytes = Depends(raw_body)) -> StatusRecordedOut:
    runtime = runtime_of(request)
    callback = WebhookRequest(url=signed_url(runtime, request), headers=request.headers, body=body)
    recorded = runtime.ledger.report_status(parse_id(channel_id, "channel"), callback)
    return StatusRecordedOut(message_id=recorded.message_id, status=recorded.status, position=recorded.position)
