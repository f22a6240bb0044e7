"""Sign-in, sign-out, and the inboxes: the caller's and the unassigned queue, each updated live."""

from collections.abc import AsyncIterable
from contextlib import aclosing, suppress
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Form, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.sse import EventSourceResponse

from api.console.session import (
    COOKIE,
    PATH,
    Session,
    SignedIn,
    SignedOut,
    console_router,
    login_token,
    login_token_matches,
    posted,
    session,
    set_login_token,
    set_session,
    signed_in,
)
from api.console.views import render
from api.dependencies import projected_position, read_model, runtime_of
from api.inbox_stream import hub_of
from api.routes.inbox import NAMES as INBOX_NAMES
from api.schemas import InboxEventOut
from ledger.errors import Forbidden, Unauthorized
from ledger.handling import HANDLERS
from ledger.tenancy import User
from projections import inbox

router = console_router()
QUEUES = {"inbox": "Your inbox", "unassigned": "Unassigned queue"}
MinPosition = Query(default=None, ge=0)


@router.get("")
def home(request: Request) -> Response:
    try:
        return RedirectResponse(session(request).home, status_code=303)
    except SignedOut:
        return RedirectResponse(f"{PATH}/login", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    return login_form(request)


def login_form(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = login_token(request)
    response = render(request, "login.html", {"login_csrf": token, "error": error}, status_code)
    set_login_token(response, request, token)
    return response


@router.post("/login")
def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not login_token_matches(request, csrf):
        return login_form(request, "The sign-in form expired: please try again.", 403)
    try:
        current = signed_in(request, api_key.strip())
    except Unauthorized:
        return login_form(request, "That key is unknown or revoked.", 401)
    except Forbidden as error:
        return login_form(request, error.message, 403)
    response = RedirectResponse(current.home, status_code=303)
    set_session(response, request, api_key.strip())
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    with suppress(SignedOut):  # a revoked key's session: its cookie goes too
        posted(request, csrf)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


def owner_of(current, queue: str) -> str | None:
    current.principal.require(*HANDLERS)
    return current.principal.user_id if queue == "inbox" else None


def handling(current: SignedIn) -> Session:
    """The session of someone who handles conversations, checked before an event stream's answer starts."""
    current.principal.require(*HANDLERS)
    return current


Handling = Annotated[Session, Depends(handling)]


async def still_signed_in(request: Request) -> bool:
    """Whether the session's key is still valid: a revoked key ends its streams at the next event."""
    try:
        await run_in_threadpool(session, request)
    except SignedOut:
        return False
    return True


async def inbox_items(request: Request, current, queue: str, min_position: int | None) -> dict:
    runtime = runtime_of(request)
    owner_id = owner_of(current, queue)
    position = await projected_position(runtime, Response(), INBOX_NAMES, min_position)
    box = await read_model(runtime, inbox.inbox_of, current.principal.company_id, owner_id, 200)
    return {**box, "position": position}


def user_of(request: Request, current) -> User:
    principal = current.principal
    return runtime_of(request).ledger.get_owned(User, UUID(principal.user_id), principal.company_id)


def inbox_route(queue: str) -> None:
    @router.get(f"/{queue}", name=f"console_{queue}")
    async def page(request: Request, current: SignedIn, min_position: int | None = MinPosition) -> Response:
        box = await inbox_items(request, current, queue, min_position)
        me = await run_in_threadpool(user_of, request, current) if queue == "inbox" else None
        context = {"session": current, "box": box, "queue": queue, "title": QUEUES[queue], "me": me}
        return render(request, "inbox.html", context)

    @router.get(f"/{queue}/rows", name=f"console_{queue}_rows")
    async def rows(request: Request, current: SignedIn, min_position: int | None = MinPosition) -> Response:
        box = await inbox_items(request, current, queue, min_position)
        return render(request, "_inbox_rows.html", {"session": current, "box": box, "queue": queue})

    @router.get(f"/{queue}/stream", name=f"console_{queue}_stream", response_class=EventSourceResponse)
    async def stream(
        request: Request,
        current: Handling,
        last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    ) -> AsyncIterable[InboxEventOut]:
        """The /v1/inbox/stream's events, authenticated by the console's cookie (EventSource sends no
        Authorization header): the browser fetches the inbox's rows again at each one."""
        owner_id = owner_of(current, queue)
        runtime = runtime_of(request)
        after = last_event_id
        if after is None:
            after = await run_in_threadpool(runtime.projector.position_of, [inbox.PROJECTION.name])
        hub = hub_of(request)
        events = hub.stream(
            current.principal.company_id,
            owner_id,
            after,
            runtime.settings.sse_heartbeat_seconds,
            request.is_disconnected,
        )
        async with aclosing(events):
            async for event in events:
                if not await still_signed_in(request):
                    return
                yield event


for queue_name in QUEUES:
    inbox_route(queue_name)
