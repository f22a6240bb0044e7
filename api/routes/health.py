"""Liveness and readiness."""

from fastapi import APIRouter, Request
from redis.exceptions import RedisError

from api.dependencies import runtime_of
from api.errors import OrjsonResponse
from api.schemas import HealthOut, ReadyOut
from projections.runner import DATABASE_UNAVAILABLE

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut, "description": "not ready"}})
def ready(request: Request) -> OrjsonResponse:
    runtime = runtime_of(request)
    checks: dict[str, object] = {}
    try:
        readiness = runtime.projector.readiness(runtime.settings.db_timeout_seconds)
        stuck = readiness.pop("stuck_writers")
        checks["postgres"] = "ok" if not stuck else f"a writer has held the log lock too long: {stuck}"
        checks.update(readiness)
    except DATABASE_UNAVAILABLE as error:
        checks["postgres"] = f"unavailable: {error}"
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except RedisError as error:
        checks["redis"] = f"unavailable: {error}"
    healthy = checks["postgres"] == "ok" and checks["redis"] == "ok"
    return OrjsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503)
