"""The admin's page: users and their availability, channels with their webhook URLs, the unassigned
queue, and the projections' lag as /ready reports it."""

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from api.console.session import PATH, Posted, SignedIn, console_router
from api.console.views import render
from api.dependencies import parse_id, read_model, runtime_of
from api.routes.tenants import channel_info
from projections import inbox
from projections.runner import DATABASE_UNAVAILABLE

router = console_router()


def readiness(request: Request) -> dict:
    runtime = runtime_of(request)
    try:
        found = runtime.projector.readiness(runtime.settings.db_timeout_seconds)
    except DATABASE_UNAVAILABLE as error:
        return {"error": f"PostgreSQL is unavailable: {error}"}
    return {"head_position": found["head_position"], "projections": found["projections"]}


def company_of(request: Request, current) -> dict:
    ledger = runtime_of(request).ledger
    users = ledger.list_users(current.principal)
    channels = [channel_info(request, channel) for channel in ledger.list_channels(current.principal)]
    return {"users": sorted(users, key=lambda user: (user.role, user.name)), "channels": channels}


@router.get("/admin")
async def admin_page(request: Request, current: SignedIn) -> Response:
    current.principal.require("admin")
    runtime = runtime_of(request)
    company = await run_in_threadpool(company_of, request, current)
    queue = await read_model(runtime, inbox.inbox_of, current.principal.company_id, None, 50)
    ready = await run_in_threadpool(readiness, request)
    context = {"session": current, "title": "Admin", **company, "queue": queue, "ready": ready}
    return render(request, "admin.html", context)


def safe_back(back: str, fallback: str) -> str:
    """Only a console path: a form field must not send the browser elsewhere."""
    return back if back.startswith(f"{PATH}/") and not back.startswith("//") else fallback


@router.post("/users/{user_id}/availability")
def set_availability(
    user_id: str,
    request: Request,
    current: Posted,
    available: Annotated[bool, Form()],
    back: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    runtime_of(request).ledger.set_availability(current.principal, parse_id(user_id, "user"), available)
    return RedirectResponse(safe_back(back, current.home), status_code=303)
