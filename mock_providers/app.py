"""The mock providers' ASGI app and its server."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from mock_providers import control, providers
from mock_providers.state import MockState


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await app.state.mock.close()  # late answers and callbacks still pending die with the server


def create_app() -> FastAPI:
    """A fresh mock with an empty memory: no requests, no faults, no callbacks."""
    app = FastAPI(
        title="Mock messaging providers",
        version="0.1.0",
        description="Twilio, SendGrid, Slack and the JSON providers in one process, for development and tests.",
        lifespan=lifespan,
    )
    app.state.mock = MockState()
    app.include_router(providers.router)
    app.include_router(control.router)
    return app


def serve(host: str, port: int) -> None:
    """Serves the mock until interrupted."""
    uvicorn.run(create_app(), host=host, port=port)
