"""KBMS's dialect: its Intercom importer and its internal conversation reads.

`POST /integrations/intercom/conversations` takes what Intercom's webhook carries (a conversation object or
the notification envelope around one) with a company key instead of Intercom's signature, and receives it
on the company's intercom channel exactly as that channel's webhook does: the opening message and each part
once, a re-delivery appending only the parts not seen before."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from psycopg import Connection
from pydantic import BaseModel, Field, RootModel

from api.demo import DialectCaller
from api.dependencies import MinPosition, json_body, parse_id, projected_position, read_model, read_one, runtime_of
from api.errors import OrjsonResponse
from api.routes.webhooks import INTERCOM_CONVERSATION, INTERCOM_ENVELOPE
from api.schemas import AUTHENTICATED, POSITIONED, WITH_BODY, SummaryOut
from projections import summaries, timeline

router = APIRouter(tags=["kbms"])
READ_ANSWERS = {**POSITIONED, **AUTHENTICATED}
INTERCOM_BODY = {"anyOf": [INTERCOM_CONVERSATION, INTERCOM_ENVELOPE]}


class IntercomDocument(RootModel[dict[str, Any]]):
    """An Intercom conversation, or the notification_event envelope around one (validated on receipt)."""


class ImportedOut(BaseModel):
    conversation_id: UUID
    intercom_conversation_id: str
    channel_id: UUID
    contact_id: UUID
    message_ids: list[UUID] = Field(description="every message of the conversation as delivered, in created_at order")
    imported: int = Field(description="messages appended by this delivery")
    deduplicated: bool = Field(description="true: every message was received before, nothing appended")
    position: int


class KbmsMessage(BaseModel):
    id: UUID
    seq: int
    direction: Literal["inbound", "outbound"]
    author_id: UUID | None = Field(description="a user of the company; null for the contact and imported replies")
    body: str
    attachments: list[str]
    sent_at: datetime | None
    created_at: datetime


class KbmsConversation(SummaryOut):
    """A conversation as KBMS listed it: the ledger's summary (KBMS had no shape of its own for it)."""


class KbmsConversationDetail(KbmsConversation):
    messages: list[KbmsMessage] = Field(description="ordered by seq")


class KbmsConversations(BaseModel):
    conversations: list[KbmsConversation] = Field(description="newest activity first")
    next_cursor: str | None


@router.post(
    "/integrations/intercom/conversations",
    status_code=201,
    response_model=ImportedOut,
    responses={
        200: {"model": ImportedOut, "description": "every message was received before: `deduplicated: true`"},
        **AUTHENTICATED,
        **WITH_BODY,
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": INTERCOM_BODY}}}},
    description="Imports an Intercom conversation on the company's intercom channel (an admin key).",
)
def import_conversation(
    request: Request, caller: DialectCaller, document: Annotated[IntercomDocument, json_body(IntercomDocument)]
) -> Response:
    channel, messages = runtime_of(request).ledger.import_intercom_conversation(caller, document.root)
    deduplicated = all(message.deduplicated for message in messages)
    first = messages[0]
    answer = ImportedOut(
        conversation_id=first.conversation_id,
        intercom_conversation_id=intercom_id(document.root),
        channel_id=channel.id,
        contact_id=first.contact_id,
        message_ids=[message.message_id for message in messages],
        imported=sum(not message.deduplicated for message in messages),
        deduplicated=deduplicated,
        position=max(message.position for message in messages),
    )
    return OrjsonResponse(answer.model_dump(mode="json"), status_code=200 if deduplicated else 201)


def intercom_id(document: dict[str, Any]) -> str:
    """The conversation's Intercom id, from the object or from its envelope (both validated by now)."""
    item = document.get("data", {}).get("item") if document.get("type") == "notification_event" else document
    return str(item["id"])


@router.get("/internal/conversations", response_model=KbmsConversations, responses=READ_ANSWERS)
async def list_conversations(
    request: Request,
    response: Response,
    caller: DialectCaller,
    channel_id: UUID | None = None,
    status: Literal["open", "closed"] | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
    min_position: int | None = MinPosition,
) -> KbmsConversations:
    runtime = runtime_of(request)
    await projected_position(runtime, response, [summaries.PROJECTION.name], min_position)
    filters = {"channel_id": channel_id, "status": status}
    items, next_cursor = await read_model(runtime, summaries.list_summaries, caller.company_id, filters, limit, cursor)
    return KbmsConversations(conversations=[KbmsConversation(**item) for item in items], next_cursor=next_cursor)


@router.get("/internal/conversations/{conversation_id}", response_model=KbmsConversationDetail, responses=READ_ANSWERS)
async def get_conversation(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: DialectCaller,
    min_position: int | None = MinPosition,
) -> KbmsConversationDetail:
    names = [summaries.PROJECTION.name, timeline.PROJECTION.name]
    conversation_uuid = str(parse_id(conversation_id, "conversation"))
    summary, messages = await read_one(
        runtime_of(request),
        response,
        names,
        min_position,
        "conversation",
        with_messages,
        caller.company_id,
        conversation_uuid,
    )
    return KbmsConversationDetail(
        **summary,
        messages=[KbmsMessage(**message, created_at=message["recorded_at"]) for message in messages],
    )


def with_messages(conn: Connection, company_id: str, conversation_id: str) -> tuple[dict, list[dict]] | None:
    summary = summaries.get_summary(conn, company_id, conversation_id)
    return None if summary is None else (summary, timeline.messages_of(conn, conversation_id))
