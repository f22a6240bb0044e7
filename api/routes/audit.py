"""Auditors' reads, straight from the log."""

from collections.abc import Iterator
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.dependencies import Caller, parse_id, runtime_of
from api.runtime import Runtime
from api.schemas import AUTHENTICATED, ConversationStateOut, HistoryEventOut, HistoryOut, errors
from ledger.auditing import History
from ledger.validation import UtcDatetime
from projections import summaries

router = APIRouter(prefix="/v1", tags=["audit"])
JSONL = "application/jsonl"
JSONL_CHUNK = 500


@router.get(
    "/conversations/{conversation_id}/history",
    response_model=HistoryOut,
    responses={**AUTHENTICATED, 200: {"content": {JSONL: {"schema": {"type": "string"}}}}},
    description="Every event of the conversation's stream, from the log, with its hashes and whether the chain "
    "verifies. `format=jsonl`: one event per line, then one line with head_hash, verified and broken_at.",
)
def history(
    conversation_id: str,
    request: Request,
    caller: Caller,
    actor: str | None = Query(default=None, description="only the events of this actor, e.g. user:<id>"),
    format: Literal["json", "jsonl"] = "json",
):
    found = runtime_of(request).ledger.history(caller, parse_id(conversation_id, "conversation"), actor)
    if format == "jsonl":
        return StreamingResponse(jsonl(found), media_type=JSONL)
    return history_out(found)


@router.get(
    "/conversations/{conversation_id}/state",
    response_model=ConversationStateOut,
    responses={**AUTHENTICATED, **errors(409)},
    description="The conversation's summary and messages as they were at a time (`at`) or after a version of its "
    "stream (`version`; past the end: the latest), replayed from the log by the fold the read models compute. "
    "Exactly one of `at` and `version`. For admins and auditors.",
)
def state(
    conversation_id: str,
    request: Request,
    caller: Caller,
    at: Annotated[UtcDatetime | None, Query(description="ISO 8601; the state after what was recorded by then")] = None,
    version: int | None = Query(default=None, ge=1, description="the state after this version of the stream"),
) -> dict:
    runtime, conversation_uuid = runtime_of(request), parse_id(conversation_id, "conversation")
    replayed = runtime.ledger.state(caller, conversation_uuid, at, version)
    return {**replayed, "number": number_of(runtime, caller.company_id, str(conversation_uuid))}


def number_of(runtime: Runtime, company_id: str, conversation_id: str) -> int | None:
    """The conversation's number: not in the log, given once by the summaries read model (null until then)."""
    with runtime.pool.connection() as conn:
        summary = summaries.get_summary(conn, company_id, conversation_id)
    return None if summary is None else summary["number"]


def history_out(found: History) -> HistoryOut:
    return HistoryOut(
        conversation_id=found.conversation_id,
        events=[event_out(event) for event in found.events],
        head_hash=found.head_hash,
        verified=found.verified,
        broken_at=found.broken_at,
    )


def event_out(event) -> HistoryEventOut:
    return HistoryEventOut(
        position=event.position,
        version=event.version,
        type=event.type,
        recorded_at=event.recorded_at,
        actor=event.actor,
        data=event.data,
        hash=event.hash,
        prev_hash=event.prev_hash,
    )


def jsonl(found: History) -> Iterator[bytes]:
    """A line per event, sent JSONL_CHUNK lines at a time: Starlette hands each item of a plain iterator
    to its threadpool, which cost more than the line itself."""
    for start in range(0, len(found.events), JSONL_CHUNK):
        chunk = found.events[start : start + JSONL_CHUNK]
        yield b"".join(orjson.dumps(event_out(event).model_dump(mode="json")) + b"\n" for event in chunk)
    summary = {"conversation_id": found.conversation_id, "head_hash": found.head_hash}
    yield orjson.dumps({**summary, "verified": found.verified, "broken_at": found.broken_at}) + b"\n"
