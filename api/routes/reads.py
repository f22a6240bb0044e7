"""Projection-backed reads. Each accepts min_position and answers X-Ledger-Position."""

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from api.dependencies import Caller, parse_id, projected_position, runtime_of
from ledger.errors import NotFound
from projections import contacts, summaries, timeline

router = APIRouter(prefix="/v1", tags=["reads"])
MinPosition = Query(default=None, ge=0, description="wait (bounded) until the read model reached this log position")


@router.get("/conversations")
def list_conversations(
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
    projected_position(runtime, response, [summaries.PROJECTION.name], min_position)
    filters = {"owner_id": owner_id, "channel_id": channel_id, "contact_id": contact_id, "status": status}
    with runtime.pool.connection() as conn:
        items, next_cursor = summaries.list_summaries(conn, caller.company_id, filters, limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    runtime = runtime_of(request)
    conversation_uuid = str(parse_id(conversation_id, "conversation"))
    names = [summaries.PROJECTION.name, timeline.PROJECTION.name]
    projected_position(runtime, response, names, min_position)
    with runtime.pool.connection() as conn:
        summary = summaries.get_summary(conn, caller.company_id, conversation_uuid)
        if summary is None:
            raise NotFound("no such conversation")
        return {**summary, "messages": timeline.messages_of(conn, conversation_uuid)}


@router.get("/contacts/{contact_id}")
def get_contact(
    contact_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
) -> dict:
    runtime = runtime_of(request)
    contact_uuid = str(parse_id(contact_id, "contact"))
    projected_position(runtime, response, [contacts.PROJECTION.name], min_position)
    with runtime.pool.connection() as conn:
        contact = contacts.get_contact(conn, caller.company_id, contact_uuid)
    if contact is None:
        raise NotFound("no such contact")
    return contact
