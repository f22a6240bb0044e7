"""The web console under /console: server-rendered pages for agents, admins and auditors, on the same
ledger commands and read models as /v1, with a little plain JavaScript for live updates."""

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.console import admin, audit, conversation, pages
from api.console.session import PATH, console_router, error_page
from api.console.views import HERE

fallback = console_router()


# Every method, so a console path answers an HTML page whatever the method (FastAPI's default is JSON).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@fallback.api_route("/{rest:path}", methods=METHODS)
def not_found(request: Request, rest: str) -> Response:
    if not rest and request.method in ("GET", "HEAD"):  # /console/
        return RedirectResponse(PATH, status_code=308)
    return error_page(request, 404, "Not found", f"The console has no {request.method} {PATH}/{rest}.")


def install_console(app: FastAPI) -> None:
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (pages, conversation, admin, audit):
        app.include_router(module.router)
    app.include_router(fallback)
