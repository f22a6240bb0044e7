"""Request-scoped helpers: the runtime, the caller, ids from paths and waits for projections."""

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.errors import ProjectionLagging
from api.runtime import Runtime
from ledger.application import Principal
from ledger.credentials import constant_time_equal
from ledger.errors import NotFound, Unauthorized, UnsupportedMediaType

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <key>")
    return token.strip()


def principal(request: Request) -> Principal:
    return runtime_of(request).ledger.authenticate(bearer_token(request))


Caller = Annotated[Principal, Depends(principal)]


def operator(request: Request) -> None:
    if not constant_time_equal(bearer_token(request), runtime_of(request).admin_token):
        raise Unauthorized("this needs the operator token")


def json_body(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {media_type or 'nothing'}")


def parse_id(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"no such {what}") from None


def committed(runtime: Runtime, position: int) -> int:
    """Wakes the projectors after a committed write; returns the write's position."""
    runtime.wakeup.notify()
    return position


async def projected_position(runtime: Runtime, response: Response, names: list[str], min_position: int | None) -> int:
    """Waits (bounded) until the projections reach min_position and sets X-Ledger-Position.
    The wait sleeps on the event loop, so lagging reads do not hold the thread pool."""
    position = await run_in_threadpool(runtime.projector.position_of, names)
    deadline = time.monotonic() + runtime.settings.read_wait_seconds
    pause = 0.005
    while min_position is not None and position < min_position:
        if time.monotonic() >= deadline:
            raise ProjectionLagging(
                f"the read model has not reached position {min_position} yet", {"projections": names}
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)
        position = await run_in_threadpool(runtime.projector.position_of, names)
    response.headers["X-Ledger-Position"] = str(position)
    return position


async def read_model(runtime: Runtime, query: Callable[..., T], *args: object) -> T:
    """Runs a read-model query on a pooled connection, off the event loop."""

    def run() -> T:
        with runtime.pool.connection() as conn:
            return query(conn, *args)

    return await run_in_threadpool(run)
