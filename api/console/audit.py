"""The auditor's pages: conversations to pick from, and one conversation's history from the log with
its hash chain's verification and its state at a chosen version or time."""

from datetime import UTC, datetime

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from api.console.session import PATH, SignedIn, console_router
from api.console.views import render
from api.dependencies import parse_id, read_model, runtime_of
from ledger.auditing import AUDITORS
from ledger.errors import Conflict, NotFound, ValidationFailed
from projections import summaries

router = console_router()


@router.get("/audit")
async def audit_index(
    request: Request, current: SignedIn, conversation_id: str | None = Query(default=None, max_length=100)
) -> Response:
    current.principal.require(*AUDITORS)
    if conversation_id:
        return RedirectResponse(f"{PATH}/audit/{parse_id(conversation_id.strip(), 'conversation')}", status_code=303)
    runtime = runtime_of(request)
    items, _ = await read_model(runtime, summaries.list_summaries, current.principal.company_id, {}, 50, None)
    return render(request, "audit_index.html", {"session": current, "title": "Audit", "conversations": items})


def parse_at(at: str) -> datetime:
    """An ISO time; one without a zone (a datetime-local input's) is UTC."""
    try:
        parsed = datetime.fromisoformat(at)
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # OverflowError: a zone pushing the time past year 9999 in UTC
        raise ValidationFailed.single("at", "invalid_time", "at must be an ISO 8601 time") from None


def state_at(request: Request, current, conversation_uuid, version: int | None, at: str | None) -> dict:
    """{state} or {state_error}: the history stays readable when the state cannot be replayed."""
    if version is None and not at:
        return {}
    when = parse_at(at) if at and version is None else None
    try:
        found = runtime_of(request).ledger.state(current.principal, conversation_uuid, when, version)
    except (Conflict, NotFound) as error:
        return {"state_error": error.message}
    return {"state": found}


def broken_row(history) -> int | None:
    """The version of the row to highlight: the broken one, or the first after it when it was deleted."""
    if history.broken_at is None:
        return None
    versions = [event.version for event in history.events if event.version >= history.broken_at]
    return min(versions) if versions else None


@router.get("/audit/{conversation_id}")
def history_page(
    conversation_id: str,
    request: Request,
    current: SignedIn,
    version: int | None = Query(default=None, ge=1, le=2**31),
    at: str | None = Query(default=None, max_length=64),
) -> Response:
    conversation_uuid = parse_id(conversation_id, "conversation")
    history = runtime_of(request).ledger.history(current.principal, conversation_uuid)
    context = {
        "session": current,
        "title": "History",
        "history": history,
        "broken_row": broken_row(history),
        "last_version": max((event.version for event in history.events), default=0),
        "version": version,
        "at": at or "",
        **state_at(request, current, conversation_uuid, version, at),
    }
    return render(request, "history.html", context)
