"""The assignment policy: when an agent becomes available, the unassigned queue drains to the
available agents, longest waiting first. `choose_agent` is also how the bot hands off.

Decisions read the inbox read model, caught up first by this process itself, so each one
counts the assignments made just before it."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from ledger.application import Ledger
from ledger.tenancy import User
from projections import Projection, inbox
from projections.runner import Projector

ACTOR = "policy:assignment"
# A policy acts on what happens now: replaying old events (a rebuild, a long outage) must not
# hand out today's queue because of an agent who became available last week.
FRESH_FOR = timedelta(hours=1)
NEVER = datetime.min.replace(tzinfo=UTC)


def is_fresh(event) -> bool:
    return datetime.now(UTC) - event.recorded_at <= FRESH_FOR


def choose_agent(ledger: Ledger, projector: Projector, company_id: str) -> str | None:
    """The available agent with the fewest open conversations; ties: the longest idle."""
    agents = ledger.available_agents(company_id)
    if not agents:
        return None
    projector.catch_up(projector.get(inbox.PROJECTION.name))
    with projector.pool.connection() as conn:
        counts = inbox.open_counts(conn, company_id)
        assigned_at = inbox.last_assigned(conn, company_id)
    chosen = min(agents, key=lambda agent: workload(agent, counts, assigned_at))
    return str(chosen.id)


def workload(agent: User, counts: dict[str, int], assigned_at: dict[str, datetime]) -> tuple:
    agent_id = str(agent.id)
    return counts.get(agent_id, 0), assigned_at.get(agent_id, NEVER), agent_id


def drain_unassigned(ledger: Ledger, projector: Projector, company_id: str, as_of: datetime) -> int:
    """Assigns the conversations unassigned as of that time (an agent's becoming available), oldest first,
    while anyone is available. A conversation queued after it waits for the next availability: so the
    policy replayed (a rebuild) assigns nothing it did not assign when the event was new."""
    assigned = 0
    projector.catch_up(projector.get(inbox.PROJECTION.name))
    with projector.pool.connection() as conn:
        queue = inbox.unassigned_queue(conn, company_id, as_of)
    for conversation_id in queue:
        agent_id = choose_agent(ledger, projector, company_id)
        if agent_id is None:
            break
        if ledger.assign(UUID(conversation_id), None, agent_id, ACTOR) is not None:
            assigned += 1
    return assigned


def build(ledger: Ledger, projector: Projector) -> Projection:
    policy = Projection("assignment", ddl=[], tables=[], starts_at_head=True)

    @policy.on(User.AvailabilityChanged)
    def agent_became_available(cursor, event: User.AvailabilityChanged, position: int) -> None:
        if event.available and is_fresh(event):
            drain_unassigned(ledger, projector, event.company_id, event.recorded_at)

    return policy
