"""The conversation view (timeline, contact card) and what an agent does there: reply, transfer,
close, reopen, mark read. Each form posts here and calls the same ledger command as /v1."""

from typing import Annotated
from uuid import uuid4

from fastapi import Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from api.console.session import PATH, Posted, Session, SignedIn, console_router
from api.console.views import render
from api.dependencies import parse_id, projected_position, read_model, runtime_of
from api.routes.reads import conversation_with_messages
from api.routes.sends import MAX_BODY_CHARACTERS, NewMessage
from ledger.errors import NotFound
from ledger.handling import HANDLERS
from projections import contacts, summaries, timeline

router = console_router()
NAMES = [summaries.PROJECTION.name, timeline.PROJECTION.name, contacts.PROJECTION.name]
PENDING = ("queued", "sending")
MinPosition = Query(default=None, ge=0)


def user_names(request: Request, current: Session) -> tuple[dict[str, str], list[str]]:
    """Ids to names, for who owns and who wrote, and the ids a conversation can be transferred to (the
    people who handle conversations: admins and agents); auditors may not list users and see ids."""
    if current.role not in HANDLERS:
        return {}, []
    users = runtime_of(request).ledger.list_users(current.principal)
    names = {str(user.id): f"{user.name} ({user.role})" for user in users}
    return names, [str(user.id) for user in users if user.role in ("admin", "agent")]


async def conversation_context(request: Request, current: Session, conversation_id: str, min_position) -> dict:
    runtime = runtime_of(request)
    conversation_uuid = str(parse_id(conversation_id, "conversation"))
    await projected_position(runtime, Response(), NAMES, min_position)
    company_id = current.principal.company_id
    conversation = await read_model(runtime, conversation_with_messages, company_id, conversation_uuid)
    if conversation is None:
        raise NotFound("no such conversation")
    contact = await read_model(runtime, contacts.get_contact, company_id, str(conversation["contact_id"]))
    names, handlers = await run_in_threadpool(user_names, request, current)
    pending = any(m["direction"] == "outbound" and m["status"] in PENDING for m in conversation["messages"])
    return {
        "session": current,
        "conversation": conversation,
        "contact": contact,
        "names": names,
        "transfer_to": [user_id for user_id in handlers if user_id != str(conversation["owner_id"] or "")],
        "pending": pending,
        "can_handle": current.role in HANDLERS,
        "can_audit": current.role in ("admin", "auditor"),
        "idempotency_key": str(uuid4()),
        "title": f"Conversation #{conversation['number']}",
    }


@router.get("/conversations/{conversation_id}")
async def conversation_page(
    conversation_id: str, request: Request, current: SignedIn, min_position: int | None = MinPosition
) -> Response:
    context = await conversation_context(request, current, conversation_id, min_position)
    return render(request, "conversation.html", context)


@router.get("/conversations/{conversation_id}/timeline")
async def timeline_rows(
    conversation_id: str, request: Request, current: SignedIn, min_position: int | None = MinPosition
) -> Response:
    context = await conversation_context(request, current, conversation_id, min_position)
    return render(request, "_timeline.html", context)


def back_to(conversation_id: object, position: int) -> Response:
    return RedirectResponse(f"{PATH}/conversations/{conversation_id}?min_position={position}", status_code=303)


@router.post("/conversations/{conversation_id}/reply")
def reply(
    conversation_id: str,
    request: Request,
    current: Posted,
    idempotency_key: Annotated[str, Form(min_length=1, max_length=200)],  # required: a double submit sends once
    body: Annotated[str, Form(max_length=MAX_BODY_CHARACTERS)] = "",
    attachments: Annotated[str, Form(max_length=25_000)] = "",
) -> Response:
    try:
        message = NewMessage(body=body, attachments=[line.strip() for line in attachments.splitlines() if line.strip()])
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from error
    runtime = runtime_of(request)
    queued = runtime.ledger.send_to_conversation(
        current.principal,
        parse_id(conversation_id, "conversation"),
        message.body,
        message.attachments,
        idempotency_key,
    )
    runtime.metrics.send_queued("conversation", queued.created)
    return back_to(queued.conversation_id, queued.position)


@router.post("/conversations/{conversation_id}/transfer")
def transfer(
    conversation_id: str,
    request: Request,
    current: Posted,
    to_user_id: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    to_user = parse_id(to_user_id, "user") if to_user_id else None
    handled = runtime_of(request).ledger.transfer(
        current.principal, parse_id(conversation_id, "conversation"), to_user, reason.strip() or None
    )
    if handled.owner_id != current.principal.user_id:  # it left the caller's inbox
        return RedirectResponse(f"{PATH}/inbox?min_position={handled.position}", status_code=303)
    return back_to(handled.conversation_id, handled.position)


def status_action(path: str, command_name: str) -> None:
    @router.post(f"/conversations/{{conversation_id}}/{path}", name=f"console_{path}")
    def change(conversation_id: str, request: Request, current: Posted) -> Response:
        command = getattr(runtime_of(request).ledger, command_name)
        handled = command(current.principal, parse_id(conversation_id, "conversation"))
        return back_to(handled.conversation_id, handled.position)


for action, command in (("close", "close_conversation"), ("reopen", "reopen_conversation"), ("read", "mark_read")):
    status_action(action, command)
