"""Sailer's dialect: companies, a WhatsApp inbound webhook, conversations, replies, transfers and contacts'
custom fields, mapped onto /v1's commands and read models. Ids are the ledger's (in demo mode the seed's
placeholders `company-123`, `whatsapp-1` and `agent-1` stand for the demo's)."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg import Connection
from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from api.demo import DialectCaller, operator_or_demo, placeholder
from api.dependencies import MinPosition, json_body, parse_id, projected_position, read_model, read_one, runtime_of
from api.dialects.replays import stored_message
from api.models import RequestBody
from api.routes.contacts import CustomKey, CustomValue
from api.routes.sends import MAX_BODY_CHARACTERS, IdempotencyKey
from api.schemas import AUTHENTICATED, POSITIONED, WITH_BODY, errors, request_body
from ledger.contact_commands import MAX_CUSTOM_FIELDS
from ledger.errors import NotFound, ValidationFailed
from ledger.validation import UtcDatetime, reject_nul_characters
from projections import summaries, timeline

router = APIRouter(tags=["sailer"])
Id = Annotated[str, Field(min_length=1, max_length=100, description="a ledger id (uuid)")]
READ_ANSWERS = {**POSITIONED, **AUTHENTICATED}


# -- requests ---------------------------------------------------------------------------------------


class SailerNewCompany(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Acme"}]})

    name: str = Field(min_length=1, max_length=200)


class SailerInbound(RequestBody):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "company_id": "company-123",
                    "channel_id": "whatsapp-1",
                    "from": "+5511999999999",
                    "text": "Hi, I need help with my order",
                    "channel_message_id": "wamid-1",
                }
            ]
        },
    )

    company_id: Id
    channel_id: Id = Field(description="a whatsapp channel of the company")
    sender: str = Field(alias="from", min_length=1, max_length=320)
    text: str = Field(max_length=MAX_BODY_CHARACTERS)
    channel_message_id: str = Field(min_length=1, max_length=200, description="the provider's id: the dedup key")
    timestamp: UtcDatetime | None = None


class SailerReply(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"author_id": "agent-1", "text": "On it!"}]})

    author_id: Id = Field(description="an admin or agent of the company (another user than the key's: admin key)")
    text: str = Field(min_length=1, max_length=MAX_BODY_CHARACTERS)


class SailerTransfer(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"new_owner_id": "agent-1"}]})

    new_owner_id: Id | None = Field(description="a user of the company; null: the unassigned queue")


class SailerCustomFields(RootModel[dict[CustomKey, CustomValue]]):
    """A JSON object: each field set to its value, null deletes it, fields not named are kept."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"plan": "pro", "vip": True, "seats": 3}]})

    root: dict[CustomKey, CustomValue] = Field(max_length=MAX_CUSTOM_FIELDS)

    @model_validator(mode="before")
    @classmethod
    def storable_text(cls, data: object) -> object:
        reject_nul_characters(data)
        return data


# -- answers ----------------------------------------------------------------------------------------


class SailerCompany(BaseModel):
    id: UUID
    name: str
    api_key: str = Field(description="the admin user's key, returned once")
    admin_user_id: UUID
    bot_user_id: UUID


class SailerInboundAccepted(BaseModel):
    message_id: UUID
    conversation_id: UUID
    contact_id: UUID
    deduplicated: bool = Field(description="true: this channel_message_id was received before; nothing appended")
    position: int


class SailerMessage(BaseModel):
    id: UUID
    direction: Literal["inbound", "outbound"]
    author_id: UUID | None = Field(description="outbound: the user (or bot) who wrote it; inbound: null")
    text: str
    created_at: datetime = Field(description="when the ledger recorded it")
    status: str = Field(description="inbound: received; outbound: queued, sending, sent, delivered, failed...")


class SailerConversationSummary(BaseModel):
    id: UUID
    company_id: UUID
    channel_id: UUID
    contact_id: UUID
    owner_id: UUID | None = Field(description="null: the unassigned queue")
    status: Literal["open", "closed"]
    message_count: int
    last_message_at: datetime | None
    last_message_preview: str | None


class SailerConversation(SailerConversationSummary):
    messages: list[SailerMessage] = Field(description="ordered by seq")


class SailerConversations(BaseModel):
    conversations: list[SailerConversationSummary] = Field(description="newest activity first")
    next_cursor: str | None


class SailerReplyQueued(BaseModel):
    id: UUID
    conversation_id: UUID
    direction: Literal["outbound"]
    author_id: UUID
    text: str
    status: str = Field(description='"queued" when new; the current status for a repeated Idempotency-Key')
    position: int


class SailerTransferred(BaseModel):
    conversation_id: UUID
    owner_id: UUID | None
    position: int


class SailerContactFields(BaseModel):
    contact_id: UUID
    custom_fields: dict[str, Any] = Field(description="all of the contact's custom fields after the change")
    position: int


# -- writes -----------------------------------------------------------------------------------------


@router.post(
    "/companies",
    status_code=201,
    dependencies=[Depends(operator_or_demo)],
    responses={**errors(401, 503), **WITH_BODY},
    openapi_extra=request_body({"application/json": [SailerNewCompany]}),
    description="A company with its admin and AI bot users (the operator token; in demo mode, no key from loopback).",
)
def create_company(request: Request, body: Annotated[SailerNewCompany, json_body(SailerNewCompany)]) -> SailerCompany:
    created = runtime_of(request).ledger.create_company(body.name)
    company = created.company
    return SailerCompany(
        id=company.id,
        name=company.name,
        api_key=created.admin_key,
        admin_user_id=company.admin_user_id,
        bot_user_id=company.bot_user_id,
    )


@router.post(
    "/webhooks/inbound",
    status_code=201,
    responses={
        200: {"model": SailerInboundAccepted, "description": "a repeat: the same ids, nothing appended"},
        **AUTHENTICATED,
        **WITH_BODY,
    },
    openapi_extra=request_body({"application/json": [SailerInbound]}),
    description="An inbound WhatsApp message on the company's whatsapp channel, appended exactly once per "
    "channel_message_id (as the channel's webhook would). Needs an admin key.",
)
def receive_inbound(
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[SailerInbound, json_body(SailerInbound)],
) -> SailerInboundAccepted:
    runtime = runtime_of(request)
    document = {"from": body.sender, "text": body.text, "channel_message_id": body.channel_message_id}
    if body.timestamp is not None:
        document["timestamp"] = body.timestamp.isoformat()
    received = runtime.ledger.receive_on_channel(
        caller,
        id_in(request, body.company_id, "company"),
        id_in(request, body.channel_id, "channel"),
        "whatsapp",
        document,
    )
    ingested = received.ingested
    runtime.metrics.webhook_received(ingested.deduplicated)
    response.status_code = 200 if ingested.deduplicated else 201
    return SailerInboundAccepted(
        message_id=ingested.message_id,
        conversation_id=ingested.conversation_id,
        contact_id=ingested.contact_id,
        deduplicated=ingested.deduplicated,
        position=ingested.position,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=201,
    responses={
        200: {"model": SailerReplyQueued, "description": "the Idempotency-Key was used before: that message"},
        **AUTHENTICATED,
        **WITH_BODY,
        **errors(409),
    },
    openapi_extra=request_body({"application/json": [SailerReply]}),
    description="Queues a reply written by author_id; the dispatcher sends it through the conversation's channel.",
)
def reply(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: DialectCaller,
    body: Annotated[SailerReply, json_body(SailerReply)],
    idempotency_key: IdempotencyKey = None,
) -> SailerReplyQueued:
    runtime = runtime_of(request)
    author_id = id_in(request, body.author_id, "user")
    queued = runtime.ledger.send_as(
        caller, author_id, parse_id(conversation_id, "conversation"), body.text, idempotency_key
    )
    runtime.metrics.send_queued("conversation", queued.created)
    response.status_code = 201 if queued.created else 200
    if not queued.created:  # the Idempotency-Key's reply, as it was queued (this body may differ)
        _, stored = stored_message(runtime, caller.company_id, queued.conversation_id, queued.message_id)
        author_id, text = stored["author_id"], stored["body"]
    else:
        text = body.text
    return SailerReplyQueued(
        id=queued.message_id,
        conversation_id=queued.conversation_id,
        direction="outbound",
        author_id=author_id,
        text=text,
        status=queued.status,
        position=queued.position,
    )


@router.post(
    "/conversations/{conversation_id}/transfer",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [SailerTransfer]}),
)
def transfer(
    conversation_id: str,
    request: Request,
    caller: DialectCaller,
    body: Annotated[SailerTransfer, json_body(SailerTransfer)],
) -> SailerTransferred:
    new_owner = None if body.new_owner_id is None else id_in(request, body.new_owner_id, "user")
    handled = runtime_of(request).ledger.transfer(caller, parse_id(conversation_id, "conversation"), new_owner, None)
    return SailerTransferred(
        conversation_id=handled.conversation_id, owner_id=handled.owner_id, position=handled.position
    )


@router.post(
    "/contacts/{contact_id}/custom-fields",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [SailerCustomFields]}),
    description="Sets the contact's custom fields, as a person (PATCH /v1/contacts/{id} custom_fields).",
)
def set_custom_fields(
    contact_id: str,
    request: Request,
    caller: DialectCaller,
    body: Annotated[SailerCustomFields, json_body(SailerCustomFields)],
) -> SailerContactFields:
    contact, position = runtime_of(request).ledger.update_contact(
        caller, parse_id(contact_id, "contact"), {"custom_fields": body.root}
    )
    return SailerContactFields(contact_id=contact.id, custom_fields=contact.custom_fields, position=position)


# -- reads ------------------------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}", responses=READ_ANSWERS)
async def get_conversation(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: DialectCaller,
    min_position: int | None = MinPosition,
) -> SailerConversation:
    names = [summaries.PROJECTION.name, timeline.PROJECTION.name]
    conversation_uuid = str(parse_id(conversation_id, "conversation"))
    summary, messages = await read_one(
        runtime_of(request),
        response,
        names,
        min_position,
        "conversation",
        conversation_with_messages,
        caller.company_id,
        conversation_uuid,
    )
    return SailerConversation(
        **summary_out(caller.company_id, summary).model_dump(), messages=[message_out(m) for m in messages]
    )


@router.get("/companies/{company_id}/conversations", responses=READ_ANSWERS)
async def list_conversations(
    company_id: str,
    request: Request,
    response: Response,
    caller: DialectCaller,
    owner_id: str | None = Query(default=None, max_length=100, description="only this owner's"),
    channel_id: str | None = Query(default=None, max_length=100, description="only this channel's"),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
    min_position: int | None = MinPosition,
) -> SailerConversations:
    runtime = runtime_of(request)
    if placeholder(request, company_id) != caller.company_id:
        raise NotFound("no such company")
    filters = {
        "owner_id": filter_id(request, owner_id, "owner_id"),
        "channel_id": filter_id(request, channel_id, "channel_id"),
    }
    await projected_position(runtime, response, [summaries.PROJECTION.name], min_position)
    items, next_cursor = await read_model(runtime, summaries.list_summaries, caller.company_id, filters, limit, cursor)
    return SailerConversations(
        conversations=[summary_out(caller.company_id, item) for item in items], next_cursor=next_cursor
    )


def conversation_with_messages(conn: Connection, company_id: str, conversation_id: str):
    summary = summaries.get_summary(conn, company_id, conversation_id)
    return None if summary is None else (summary, timeline.messages_of(conn, conversation_id))


def summary_out(company_id: str, summary: dict) -> SailerConversationSummary:
    return SailerConversationSummary(
        id=summary["id"],
        company_id=company_id,
        channel_id=summary["channel_id"],
        contact_id=summary["contact_id"],
        owner_id=summary["owner_id"],
        status=summary["status"],
        message_count=summary["message_count"],
        last_message_at=summary["last_message_at"],
        last_message_preview=summary["last_message_preview"],
    )


def message_out(message: dict) -> SailerMessage:
    return SailerMessage(
        id=message["id"],
        direction=message["direction"],
        author_id=message["author_id"],
        text=message["body"],
        created_at=message["recorded_at"],
        status=message["status"],
    )


def id_in(request: Request, value: str, what: str) -> UUID:
    """An id of a request body (or a placeholder of the demo's): one that is not an id names nothing."""
    return parse_id(placeholder(request, value), what)


def filter_id(request: Request, value: str | None, field: str) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(placeholder(request, value))
    except ValueError:
        raise ValidationFailed.single(field, "uuid_parsing", f"{field} is not an id") from None
