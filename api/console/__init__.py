"""The web console under /console: server-rendered pages for agents, admins and auditors, on the same
ledger commands and read models as /v1, with a little plain JavaScript for live updates."""

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from api.console import admin, audit, conversation, pages
from api.console.session import PATH, console_router, error_page
from api.console.views import HERE

fallback = console_router()


@fallback.get("/{rest:path}")
def not_found(request: Request, rest: str) -> Response:
    return error_page(request, 404, "Not found", f"The console has no page {PATH}/{rest}.")


def install_console(app: FastAPI) -> None:
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (pages, conversation, admin, audit):
        app.include_router(module.router)
    app.include_router(fallback)
