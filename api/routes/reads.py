"""Projection-backed reads. Each accepts min_position and answers X-Ledger-Position."""

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from psycopg import Connection

from api.dependencies import Caller, MinPosition, parse_id, projected_position, read_model, read_one, runtime_of
from api.schemas import AUTHENTICATED, POSITIONED, ContactOut, ConversationOut, ConversationPage
from projections import contacts, summaries, timeline

router = APIRouter(prefix="/v1", tags=["reads"])
READ_ANSWERS = {**POSITIONED, **AUTHENTICATED}
# Each read has response_model_exclude_unset: a field the specification names but the read model does
# not hold yet is left out rather than answered as null.


@router.get(
    "/conversations", response_model=ConversationPage, response_model_exclude_unset=True, responses=READ_ANSWERS
)
async def list_conversations(
    request: Request,
    response: Response,
    caller: Caller,
    owner_id: UUID | None = None,
    channel_id: UUID | None = None,
    contact_id: UUID | None = None,
    status: Literal["open", "closed"] | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
    min_position: int | None = MinPosition,
) -> dict:
    runtime = runtime_of(request)
    await projected_position(runtime, response, [summaries.PROJECTION.name], min_position)
    filters = {"owner_id": owner_id, "channel_id": channel_id, "contact_id": contact_id, "status": status}
    items, next_cursor = await read_model(runtime, summaries.list_summaries, caller.company_id, filters, limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    response_model_exclude_unset=True,
    responses=READ_ANSWERS,
)
async def get_conversation(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    names = [summaries.PROJECTION.name, timeline.PROJECTION.name]
    conversation_uuid = str(parse_id(conversation_id, "conversation"))
    return await read_one(
        runtime_of(request),
        response,
        names,
        min_position,
        "conversation",
        conversation_with_messages,
        caller.company_id,
        conversation_uuid,
    )


def conversation_with_messages(conn: Connection, company_id: str, conversation_id: str) -> dict | None:
    summary = summaries.get_summary(conn, company_id, conversation_id)
    return None if summary is None else {**summary, "messages": timeline.messages_of(conn, conversation_id)}


@router.get(
    "/contacts/{contact_id}", response_model=ContactOut, response_model_exclude_unset=True, responses=READ_ANSWERS
)
async def get_contact(
    contact_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    contact_uuid = str(parse_id(contact_id, "contact"))
    return await read_one(
        runtime_of(request),
        response,
        [contacts.PROJECTION.name],
        min_position,
        "contact",
        contacts.get_contact,
        caller.company_id,
        contact_uuid,
    )
