"""RQ jobs. The worker process installs its projector here at start-up."""

from rq import get_current_job

from projections.runner import Projector

_projector: Projector | None = None


def install(projector: Projector | None) -> None:
    global _projector
    _projector = projector


def catch_up(projection_name: str, pending_key: str) -> int:
    """Clears the wake-up flag first, so a write committed while this job runs
    enqueues another job instead of being left behind."""
    if _projector is None:
        raise RuntimeError("no projector installed in this worker process")
    get_current_job().connection.delete(pending_key)
    return _projector.catch_up(_projector.get(projection_name))
