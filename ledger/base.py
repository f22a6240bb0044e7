"""The base of every aggregate: each event records company_id, actor and recorded_at."""

from datetime import datetime

from eventsourcing.domain import Aggregate


class LedgerAggregate(Aggregate):
    company_id: str

    class Event(Aggregate.Event):
        company_id: str
        actor: str

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

    class Created(Event, Aggregate.Created):
        pass

    def _record(self, event_class: type["LedgerAggregate.Event"], actor: str, **fields: object) -> None:
        self.trigger_event(event_class, company_id=self.company_id, actor=actor, **fields)
