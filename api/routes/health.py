"""Liveness and readiness."""

from fastapi import APIRouter, Request
from redis.exceptions import RedisError

from api.dependencies import runtime_of
from api.errors import OrjsonResponse
from projections.runner import DATABASE_UNAVAILABLE

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request) -> OrjsonResponse:
    runtime = runtime_of(request)
    checks: dict[str, object] = {}
    try:
        head = runtime.ledger.head_position()
        positions = runtime.projector.positions()
        checks["postgres"] = "ok"
        checks["projections"] = {
            name: {"position": position, "lag": head - position} for name, position in positions.items()
        }
        checks["head_position"] = head
    except DATABASE_UNAVAILABLE as error:
        checks["postgres"] = f"unavailable: {error}"
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except RedisError as error:
        checks["redis"] = f"unavailable: {error}"
    healthy = checks["postgres"] == "ok" and checks["redis"] == "ok"
    return OrjsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503)
