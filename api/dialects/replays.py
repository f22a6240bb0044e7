"""A write repeated with its Idempotency-Key is answered with the message it queued the first time, not
with the repeated request's body: the dialects that echo a message read it back from the read models."""

from api.errors import ProjectionLagging
from api.runtime import Runtime
from projections import summaries, timeline


def stored_message(runtime: Runtime, company_id: str, conversation_id: str, message_id: str) -> tuple[dict, dict]:
    """A message queued before and its conversation's summary, from the read models once they have it."""
    names = [summaries.PROJECTION.name, timeline.PROJECTION.name]
    position = runtime.ledger.head_position()
    if runtime.projector.wait_for(names, position, runtime.settings.read_wait_seconds) is None:
        raise ProjectionLagging(f"the read model has not reached position {position} yet", {"projections": names})
    with runtime.pool.connection() as conn:
        return summaries.get_summary(conn, company_id, conversation_id), timeline.get_message(
            conn, company_id, message_id
        )
