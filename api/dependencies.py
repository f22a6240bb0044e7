"""Request-scoped helpers: the runtime, the caller, ids from paths and waits for projections."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request, Response

from api.errors import ProjectionLagging
from api.runtime import Runtime
from ledger.application import Principal
from ledger.credentials import constant_time_equal
from ledger.errors import NotFound, Unauthorized, UnsupportedMediaType


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


def projected_position(runtime: Runtime, response: Response, names: list[str], min_position: int | None) -> int:
    """Waits (bounded) until the projections reach min_position and sets X-Ledger-Position."""
    projector = runtime.projector
    if min_position is None:
        position = projector.position_of(names)
    else:
        position = projector.wait_for(names, min_position, runtime.settings.read_wait_seconds)
        if position is None:
            raise ProjectionLagging(
                f"the read model has not reached position {min_position} yet", {"projections": names}
            )
    response.headers["X-Ledger-Position"] = str(position)
    return position
