"""Hatch's dialect: its messages and webhooks endpoints, mapped onto /v1's commands and read models.

Outbound messages go out through the company's channel of that kind whose address is `from`; inbound ones
land on the channel whose address is `to`, deduplicated by the provider's id exactly as the channel's
webhook is. A conversation's Hatch id is its `number` (1, 2, 3... per company)."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from psycopg import Connection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.demo import DialectCaller
from api.dependencies import MinPosition, json_body, projected_position, read_model, runtime_of
from api.dialects.replays import stored_message
from api.models import RequestBody
from api.routes.sends import MAX_BODY_CHARACTERS, IdempotencyKey
from api.runtime import Runtime
from api.schemas import AUTHENTICATED, POSITIONED, WITH_BODY, request_body
from ledger.channels.email import EmailPayload
from ledger.channels.sms import SmsPayload
from ledger.dialect_commands import Received, SentFrom
from ledger.errors import NotFound
from ledger.tenants import Principal
from ledger.validation import UtcDatetime
from projections import summaries, timeline

router = APIRouter(tags=["hatch"])
Url = Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
READ_ANSWERS = {**POSITIONED, **AUTHENTICATED}


# -- requests ---------------------------------------------------------------------------------------


class HatchOutbound(RequestBody):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1, max_length=320, description="the address of one of your channels")
    to: str = Field(min_length=1, max_length=320)
    body: str = Field(default="", max_length=MAX_BODY_CHARACTERS)
    attachments: list[Url] | None = Field(default=None, max_length=10, description="URLs of media to attach")
    timestamp: UtcDatetime | None = Field(default=None, description="the client's time; answered back as it is")

    @model_validator(mode="after")
    def something_to_send(self) -> "HatchOutbound":
        if not self.body.strip() and not self.attachments:
            raise ValueError("a message needs a body or attachments")
        return self


class HatchSms(HatchOutbound):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "+12016661234",
                    "to": "+18045551234",
                    "type": "sms",
                    "body": "Hello! This is a test SMS message.",
                    "attachments": None,
                    "timestamp": "2024-11-01T14:00:00Z",
                }
            ]
        }
    )

    type: Literal["sms", "mms"] = "sms"


class HatchEmail(HatchOutbound):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "user@usehatchapp.com",
                    "to": "contact@gmail.com",
                    "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
                    "attachments": ["https://example.com/document.pdf"],
                    "timestamp": "2024-11-01T14:00:00Z",
                }
            ]
        }
    )


# The inbound payloads are the sms and email kinds' own, with the checks every body gets (no NUL).
class HatchInboundSms(SmsPayload, RequestBody):
    pass


class HatchInboundEmail(EmailPayload, RequestBody):
    pass


# -- answers ----------------------------------------------------------------------------------------


class HatchMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: UUID
    conversation_id: UUID = Field(
        description="the ledger's conversation id (GET /api/conversations/{number}/messages takes it too)"
    )
    sender: str = Field(alias="from")
    to: str
    type: str = Field(description="sms, mms or email (other channels: their kind's type)")
    body: str
    attachments: list[str]
    timestamp: datetime | None = Field(
        description="inbound: the provider's; outbound: when it was sent, else queued (a write answers the client's)"
    )
    status: str = Field(description="inbound: received; outbound: queued, sending, sent, delivered, failed...")
    direction: Literal["inbound", "outbound"]


class HatchMessageWritten(HatchMessage):
    position: int = Field(description="the log position of the write: reads with min_position show it")
    deduplicated: bool = Field(
        description="inbound: the provider's message was received before (nothing appended); outbound: the "
        "Idempotency-Key was used before"
    )


class HatchConversation(BaseModel):
    id: int = Field(description="Hatch's id: the conversation's number, 1, 2, 3... per company")
    conversation_id: UUID = Field(description="the ledger's id")
    channel_id: UUID
    participants: list[str] = Field(description="[the contact's address, the channel's address]")
    status: Literal["open", "closed"]
    message_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    created_at: datetime
    updated_at: datetime


class HatchConversations(BaseModel):
    conversations: list[HatchConversation] = Field(description="newest activity first")
    next_cursor: str | None


class HatchTimeline(BaseModel):
    conversation: HatchConversation
    messages: list[HatchMessage] = Field(description="ordered by seq")


WRITTEN = {
    200: {"model": HatchMessageWritten, "description": "a repeat: the same message, nothing appended"},
}


def received_out(received: Received, type_: str, response: Response) -> HatchMessageWritten:
    ingested, message = received.ingested, received.message
    response.status_code = 200 if ingested.deduplicated else 201
    return HatchMessageWritten(
        id=ingested.message_id,
        conversation_id=ingested.conversation_id,
        sender=received.sender,
        to=received.channel.address,
        type=type_,
        body=message.body,
        attachments=message.attachments,
        timestamp=message.sent_at,
        status="received",
        direction="inbound",
        position=ingested.position,
        deduplicated=ingested.deduplicated,
    )


def queued_out(
    runtime: Runtime, caller: Principal, result: SentFrom, type_: str, body: HatchOutbound, response: Response
) -> HatchMessageWritten:
    queued = result.queued
    response.status_code = 201 if queued.created else 200
    if not queued.created:  # the Idempotency-Key's message, as it was queued (this body may differ)
        summary, message = stored_message(runtime, caller.company_id, queued.conversation_id, queued.message_id)
        stored = message_out(summary, message).model_dump(by_alias=False)
        return HatchMessageWritten(**stored, position=queued.position, deduplicated=True)
    return HatchMessageWritten(
        id=queued.message_id,
        conversation_id=queued.conversation_id,
        sender=result.channel.address,
        to=result.to,
        type=type_,
        body=body.body,
        attachments=body.attachments or [],
        timestamp=body.timestamp or datetime.now(UTC),
        status=queued.status,
        direction="outbound",
        position=queued.position,
        deduplicated=not queued.created,
    )


# -- outbound ---------------------------------------------------------------------------------------


@router.post(
    "/api/messages/sms",
    status_code=201,
    response_model=HatchMessageWritten,
    responses={**WRITTEN, **AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [HatchSms]}),
    description="Queues an SMS or MMS from your sms channel whose address is `from` (422 if none); the "
    "dispatcher sends it. `Idempotency-Key` makes a retry safe.",
)
def send_sms(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[HatchSms, json_body(HatchSms)],
    idempotency_key: IdempotencyKey = None,
) -> HatchMessageWritten:
    runtime = runtime_of(request)
    result = runtime.ledger.send_from_address(
        caller, "sms", body.sender, body.to, body.body, body.attachments or [], body.type, idempotency_key
    )
    runtime.metrics.send_queued("address", result.queued.created)
    return queued_out(runtime, caller, result, body.type, body, response)


@router.post(
    "/api/messages/email",
    status_code=201,
    response_model=HatchMessageWritten,
    responses={**WRITTEN, **AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [HatchEmail]}),
    description="Queues an email (HTML body) from your email channel whose address is `from` (422 if none).",
)
def send_email(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[HatchEmail, json_body(HatchEmail)],
    idempotency_key: IdempotencyKey = None,
) -> HatchMessageWritten:
    runtime = runtime_of(request)
    result = runtime.ledger.send_from_address(
        caller, "email", body.sender, body.to, body.body, body.attachments or [], None, idempotency_key
    )
    runtime.metrics.send_queued("address", result.queued.created)
    return queued_out(runtime, caller, result, "email", body, response)


# -- inbound ----------------------------------------------------------------------------------------


@router.post(
    "/api/webhooks/sms",
    status_code=201,
    response_model=HatchMessageWritten,
    responses={**WRITTEN, **AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [HatchInboundSms]}),
    description="An inbound SMS/MMS (the sms kind's payload) on your sms channel whose address is `to` (422 if "
    "none); a repeat of `messaging_provider_id` answers 200 with the same ids. Needs an admin key.",
)
def receive_sms(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[HatchInboundSms, json_body(HatchInboundSms)],
) -> HatchMessageWritten:
    runtime = runtime_of(request)
    received = runtime.ledger.receive_by_address(caller, "sms", body)
    runtime.metrics.webhook_received(received.ingested.deduplicated)
    return received_out(received, body.type, response)


@router.post(
    "/api/webhooks/email",
    status_code=201,
    response_model=HatchMessageWritten,
    responses={**WRITTEN, **AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [HatchInboundEmail]}),
    description="An inbound email (the email kind's payload) on your email channel whose address is `to` (422 "
    "if none); a repeat of `xillio_id` answers 200 with the same ids. Needs an admin key.",
)
def receive_email(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[HatchInboundEmail, json_body(HatchInboundEmail)],
) -> HatchMessageWritten:
    runtime = runtime_of(request)
    received = runtime.ledger.receive_by_address(caller, "email", body)
    runtime.metrics.webhook_received(received.ingested.deduplicated)
    return received_out(received, "email", response)


# -- reads ------------------------------------------------------------------------------------------


@router.get("/api/conversations", responses=READ_ANSWERS)
async def list_conversations(
    request: Request,
    response: Response,
    caller: DialectCaller,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
    min_position: int | None = MinPosition,
) -> HatchConversations:
    runtime = runtime_of(request)
    await projected_position(runtime, response, [summaries.PROJECTION.name], min_position)
    items, next_cursor = await read_model(runtime, summaries.list_summaries, caller.company_id, {}, limit, cursor)
    return HatchConversations(conversations=[conversation_out(item) for item in items], next_cursor=next_cursor)


@router.get(
    "/api/conversations/{number}/messages",
    responses=READ_ANSWERS,
    description="The conversation's messages, ordered by seq; `number` is Hatch's id (the ledger's id works too).",
)
async def list_messages(
    number: str,
    request: Request,
    response: Response,
    caller: DialectCaller,
    min_position: int | None = MinPosition,
) -> HatchTimeline:
    runtime = runtime_of(request)
    await projected_position(runtime, response, [summaries.PROJECTION.name, timeline.PROJECTION.name], min_position)
    found = await read_model(runtime, conversation_timeline, caller.company_id, number)
    if found is None:
        raise NotFound("no such conversation")
    summary, messages = found
    return HatchTimeline(
        conversation=conversation_out(summary), messages=[message_out(summary, message) for message in messages]
    )


def conversation_timeline(conn: Connection, company_id: str, number: str) -> tuple[dict, list[dict]] | None:
    summary = find_summary(conn, company_id, number)
    return None if summary is None else (summary, timeline.messages_of(conn, summary["id"]))


def find_summary(conn: Connection, company_id: str, reference: str) -> dict | None:
    """By number, or by the ledger's id."""
    if reference.isascii() and reference.isdigit() and len(reference) < 10:
        return summaries.get_by_number(conn, company_id, int(reference))
    try:
        conversation_id = UUID(reference)
    except ValueError:
        return None
    return summaries.get_summary(conn, company_id, str(conversation_id))


def conversation_out(summary: dict) -> HatchConversation:
    return HatchConversation(
        id=summary["number"],
        conversation_id=summary["id"],
        channel_id=summary["channel_id"],
        participants=summary["participants"],
        status=summary["status"],
        message_count=summary["message_count"],
        last_message_at=summary["last_message_at"],
        last_message_preview=summary["last_message_preview"],
        created_at=summary["created_at"],
        updated_at=summary["updated_at"],
    )


def message_out(summary: dict, message: dict) -> HatchMessage:
    contact_address, channel_address = summary["participants"]
    inbound = message["direction"] == "inbound"
    return HatchMessage(
        id=message["id"],
        conversation_id=summary["id"],
        sender=contact_address if inbound else channel_address,
        to=channel_address if inbound else contact_address,
        type=hatch_type(message["type"], channel_address),
        body=message["body"],
        attachments=message["attachments"],
        timestamp=message["sent_at"] or message["recorded_at"],
        status=message["status"],
        direction=message["direction"],
    )


def hatch_type(message_type: str, channel_address: str) -> str:
    """The ledger records an outbound email as `text` (the type of every non-phone channel's sends);
    Hatch calls it `email`. Email channels' addresses, and only theirs, are email addresses."""
    return "email" if message_type == "text" and "@" in channel_address else message_type
