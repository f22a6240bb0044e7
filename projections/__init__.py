"""Read models projected from the event log.

A projection is a module in this package exposing `PROJECTION`; adding a module adds
a projection. Each projection owns its tables and the queries that read them.
"""

from collections.abc import Callable
from functools import cache
from typing import Any

from eventsourcing.utils import get_topic
from psycopg import Cursor

from ledger.plugins import module_attributes

Handler = Callable[[Cursor, Any, int], None]


class Projection:
    def __init__(self, name: str, ddl: list[str], tables: list[str], starts_at_head: bool = False) -> None:
        self.name = name
        self.ddl = ddl
        self.tables = tables
        # A policy acts on new events only: first installed on a log with a history, it starts
        # at the head instead of answering every old message.
        self.starts_at_head = starts_at_head
        self._handlers: dict[str, Handler] = {}

    def on(self, event_class: type) -> Callable[[Handler], Handler]:
        """Registers the handler that applies one event of this class, given the
        cursor of the batch's transaction and the event's log position."""

        def register(handler: Handler) -> Handler:
            self._handlers[get_topic(event_class)] = handler
            return handler

        return register

    def handler_for(self, topic: str) -> Handler | None:
        return self._handlers.get(topic)


@cache
def all_projections() -> dict[str, Projection]:
    found = module_attributes(__name__, __path__, "PROJECTION")
    return {projection.name: projection for projection in found if isinstance(projection, Projection)}
