"""Inboxes: the caller's, another user's (admins), the unassigned queue, and the caller's live stream."""

from collections.abc import AsyncIterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse

from api.dependencies import Caller, MinPosition, parse_id, projected_position, read_model, runtime_of
from api.inbox_stream import hub_of
from api.runtime import Runtime
from api.schemas import AUTHENTICATED, POSITIONED, InboxEventOut, InboxOut
from ledger.handling import HANDLERS
from ledger.tenancy import User
from projections import inbox, summaries

router = APIRouter(prefix="/v1", tags=["inbox"])
READ_ANSWERS = {**POSITIONED, **AUTHENTICATED}
NAMES = [inbox.PROJECTION.name, summaries.PROJECTION.name]


def json_errors(answers: dict) -> dict:
    """The error answers of the streaming route, documented as JSON as they are sent: FastAPI files a
    `model` under the route's own media type (text/event-stream)."""
    documented = {}
    for status, answer in answers.items():
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer['model'].__name__}"}}}
        documented[status] = {key: value for key, value in answer.items() if key != "model"} | {"content": content}
    return documented


Limit = Query(default=200, ge=1, le=1000, description="at most this many items (open_count counts them all)")


async def read_inbox(
    runtime: Runtime, response: Response, company_id: str, owner_id: str | None, min_position, limit: int
) -> dict:
    await projected_position(runtime, response, NAMES, min_position)
    return await read_model(runtime, inbox.inbox_of, company_id, owner_id, limit)


@router.get("/inbox", response_model=InboxOut, response_model_exclude_unset=True, responses=READ_ANSWERS)
async def my_inbox(
    request: Request, response: Response, caller: Caller, min_position: int | None = MinPosition, limit: int = Limit
) -> dict:
    """The caller's open conversations, longest waiting first."""
    caller.require(*HANDLERS)
    return await read_inbox(runtime_of(request), response, caller.company_id, caller.user_id, min_position, limit)


@router.get("/inbox/unassigned", response_model=InboxOut, response_model_exclude_unset=True, responses=READ_ANSWERS)
async def unassigned_inbox(
    request: Request, response: Response, caller: Caller, min_position: int | None = MinPosition, limit: int = Limit
) -> dict:
    """The unassigned queue (owner_id null): open conversations nobody owns, longest waiting first."""
    caller.require(*HANDLERS)
    return await read_inbox(runtime_of(request), response, caller.company_id, None, min_position, limit)


@router.get(
    "/users/{user_id}/inbox", response_model=InboxOut, response_model_exclude_unset=True, responses=READ_ANSWERS
)
async def user_inbox(
    user_id: str,
    request: Request,
    response: Response,
    caller: Caller,
    min_position: int | None = MinPosition,
    limit: int = Limit,
) -> dict:
    """Any user's inbox in the caller's company (admins)."""
    caller.require("admin")
    runtime = runtime_of(request)
    user = await run_in_threadpool(runtime.ledger.get_owned, User, parse_id(user_id, "user"), caller.company_id)
    return await read_inbox(runtime, response, caller.company_id, str(user.id), min_position, limit)


@dataclass(frozen=True)
class StreamStart:
    company_id: str
    owner_id: str
    after: int


async def stream_start(
    request: Request,
    caller: Caller,
    last_event_id_header: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, description="resume after this event id (a log position)"),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, description="as Last-Event-ID, for clients that cannot set headers")
    ] = None,
) -> StreamStart:
    """Who streams and from where, settled before the response starts (so errors are answered as such):
    after Last-Event-ID when given, else after the position the inbox has reached (only new changes)."""
    caller.require(*HANDLERS)
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    if after is None:
        after = await run_in_threadpool(runtime_of(request).projector.position_of, [inbox.PROJECTION.name])
    return StreamStart(caller.company_id, caller.user_id, after)


@router.get("/inbox/stream", response_class=EventSourceResponse, responses=json_errors(AUTHENTICATED))
async def inbox_stream(
    request: Request, start: Annotated[StreamStart, Depends(stream_start)]
) -> AsyncIterable[InboxEventOut]:
    """Server-Sent Events: one event per change of the caller's inbox, pushed once projected. The
    event's `id` is the change's log position; reconnecting with `Last-Event-ID` replays what was
    missed, each change once, in order. Comments (`: heartbeat`) keep idle streams open."""
    heartbeat = runtime_of(request).settings.sse_heartbeat_seconds
    events = hub_of(request).stream(start.company_id, start.owner_id, start.after, heartbeat, request.is_disconnected)
    async with aclosing(events):
        async for event in events:
            yield event  # a ServerSentEvent, whose data is an InboxEventOut as JSON
