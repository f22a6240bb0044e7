"""Request-scoped helpers: the runtime, the caller, ids from paths and waits for projections."""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_delay, wait_exponential

from api.errors import ProjectionLagging
from api.runtime import Runtime
from ledger.credentials import constant_time_equal
from ledger.errors import NotFound, Unauthorized, UnsupportedMediaType, ValidationFailed
from ledger.tenants import Principal

T = TypeVar("T")
Body = TypeVar("Body", bound=BaseModel)


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


bearer = HTTPBearer(scheme_name="bearerAuth", description="a company key, or the operator token", auto_error=False)


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> str:
    if credentials is None:
        raise Unauthorized("send Authorization: Bearer <key>")
    return credentials.credentials


Token = Annotated[str, Depends(bearer_token)]


def principal(request: Request, token: Token) -> Principal:
    return runtime_of(request).ledger.authenticate(token)


Caller = Annotated[Principal, Depends(principal)]


def operator(request: Request, token: Token) -> None:
    if not constant_time_equal(token, runtime_of(request).admin_token):
        raise Unauthorized("this needs the operator token")


def json_body(model: type[Body]) -> Any:
    """The JSON body as `model`, as a dependency. FastAPI decodes a declared body before it runs any
    dependency, so routes read theirs through this one, declared after the ones that authenticate:
    a caller without credentials gets 401, whatever the body."""

    async def parse(request: Request) -> Body:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType(f"expected application/json, got {media_type or 'nothing'}")
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False)) from error

    return Depends(parse)


def parse_id(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"no such {what}") from None


async def projected_position(runtime: Runtime, response: Response, names: list[str], min_position: int | None) -> int:
    """Waits (bounded) until the projections reach min_position and sets X-Ledger-Position."""
    position = await run_in_threadpool(runtime.projector.position_of, names)
    if min_position is not None and position < min_position:
        await run_in_threadpool(refuse_positions_beyond_the_head, runtime, min_position)
        position = await wait_until_projected(runtime, names, min_position)
    response.headers["X-Ledger-Position"] = str(position)
    return position


async def wait_until_projected(runtime: Runtime, names: list[str], min_position: int) -> int:
    """Polls the projections' position with a growing pause on the event loop, so lagging
    reads do not hold the thread pool; ProjectionLagging once the read budget is spent."""

    def lagging(state: RetryCallState) -> int:
        raise ProjectionLagging(f"the read model has not reached position {min_position} yet", {"projections": names})

    waiting = AsyncRetrying(
        retry=retry_if_result(lambda position: position < min_position),
        wait=wait_exponential(multiplier=0.005, max=0.1),
        stop=stop_after_delay(runtime.settings.read_wait_seconds),
        retry_error_callback=lagging,
    )
    return await waiting(run_in_threadpool, runtime.projector.position_of, names)


def refuse_positions_beyond_the_head(runtime: Runtime, min_position: int) -> None:
    """Every write answers a position at or below the log's head, so a larger one is a
    client's mistake: waiting for it would only spend the whole read budget."""
    head = runtime.ledger.head_position()
    if min_position > head:
        raise ValidationFailed.single(
            "min_position", "beyond_head", f"min_position {min_position} is beyond the log's head ({head})"
        )


async def read_model(runtime: Runtime, query: Callable[..., T], *args: object) -> T:
    """Runs a read-model query on a pooled connection, off the event loop."""

    def run() -> T:
        with runtime.pool.connection() as conn:
            return query(conn, *args)

    return await run_in_threadpool(run)


MinPosition = Query(default=None, ge=0, description="wait (bounded) until the read model reached this log position")


async def read_one(
    runtime: Runtime,
    response: Response,
    names: list[str],
    min_position: int | None,
    what: str,
    query: Callable[..., T | None],
    *args: object,
) -> T:
    """One item of the named read models, once they reached min_position; NotFound when the query finds none."""
    await projected_position(runtime, response, names, min_position)
    found = await read_model(runtime, query, *args)
    if found is None:
        raise NotFound(f"no such {what}")
    return found
