"""The seed dialects: the HTTP shapes of the systems this product replaces, each a thin router onto
/v1's commands and read models, under its own OpenAPI tag."""

from fastapi import FastAPI

from api.dialects import hatch, kbms, landbot, sailer

ROUTERS = (hatch.router, sailer.router, kbms.router, landbot.router)


def include_dialects(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
