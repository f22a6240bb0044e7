"""What auditors read: a stream's full history from the log itself, each event with its hashes,
and whether its chain verifies."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError, get_topic

from ledger.conversation_state import conversation_state
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.integrity import ChainCheck, StoredLink, check_chain
from ledger.messaging import Conversation

AUDITORS = ("admin", "auditor")
METADATA = ("originator_id", "originator_version", "timestamp", "company_id", "actor")
UNDECODABLE = (ValueError, TypeError, KeyError, AttributeError, TopicError)


@dataclass(frozen=True)
class HistoryEvent:
    position: int
    version: int
    type: str
    recorded_at: datetime | None  # None: the stored event no longer decodes
    actor: str | None
    data: dict[str, Any] | None
    hash: str | None
    prev_hash: str | None
    company_id: str | None = None


@dataclass(frozen=True)
class History:
    conversation_id: str
    events: list[HistoryEvent]
    head_hash: str | None
    verified: bool
    broken_at: int | None
    reason: str | None
    company_id: str | None = None
    first_topic: str | None = None  # what kind of stream: its first event's topic


class Auditing:
    """The Ledger's audit reads (self is the Ledger)."""

    def history(self, principal, conversation_id: UUID, actor: str | None = None) -> History:
        principal.require(*AUDITORS)
        found = self.read_history(conversation_id, actor)
        if found.company_id != principal.company_id or found.first_topic != get_topic(Conversation.Started):
            raise NotFound("no such conversation")  # a channel's, a user's or a key's stream is not for auditors
        return found

    def state(self, principal, conversation_id: UUID, at: datetime | None, version: int | None) -> dict:
        """The conversation as it was at a time or after a version, replayed from the log by the pure fold
        of ledger.conversation_state; with it, `version` (the last one included) and `at` (the time asked
        for or, given a version, the time that version was recorded). A version past the end: the latest."""
        principal.require(*AUDITORS)
        if (at is None) == (version is None):
            raise ValidationFailed.single("at", "one_of_at_or_version", "give exactly one of at and version")
        with self.keyring.fresh():  # every erasure committed before this read shows
            try:
                events = list(self.repository.event_store.get(conversation_id, lte=version))
            except UNDECODABLE as error:
                raise Conflict(
                    "a stored event of this conversation no longer decodes: its history says where the log breaks",
                    [{"field": "conversation_id", "issue": "undecodable_event", "message": str(error)[:200]}],
                ) from error
        if not events or not isinstance(events[0], Conversation.Started):
            raise NotFound("no such conversation")
        if events[0].company_id != principal.company_id:
            raise NotFound("no such conversation")
        if at is not None:
            events = [event for event in events if event.timestamp <= at]
            if not events:
                raise NotFound("the conversation did not exist yet at that time")
        last = events[-1]
        return {**conversation_state(events), "version": last.originator_version, "at": at or last.timestamp}

    def read_history(self, stream_id: UUID, actor: str | None = None) -> History:
        """A stream's history, for the operator (`ledger replay`); the API's `history` checks the caller."""
        links, head = self.recorder.stream_links(stream_id)
        with self.keyring.fresh():  # every erasure committed before this read shows
            events = [self._history_event(stream_id, position, link) for position, link in links]
        companies = {event.company_id for event in events if event.company_id is not None}
        if len(companies) != 1:
            raise NotFound("no such conversation")
        check = first_undecodable(check_chain(str(stream_id), (link for _, link in links), head), events)
        shown = [event for event in events if actor is None or event.actor == actor]
        return History(
            str(stream_id),
            shown,
            check.head_hash,
            check.verified,
            check.broken_at,
            check.reason,
            companies.pop(),
            links[0][1].topic,
        )

    def _history_event(self, stream_id: UUID, position: int, link: StoredLink) -> HistoryEvent:
        type_name = link.topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        try:
            event = self.mapper.to_domain_event(StoredEvent(stream_id, link.version, link.topic, link.payload))
        except UNDECODABLE:
            event = None
        if event is None or not well_formed(event):
            return HistoryEvent(position, link.version, type_name, None, None, None, link.hash, link.prev_hash)
        data = {name: value for name, value in vars(event).items() if name not in METADATA}
        return HistoryEvent(
            position,
            link.version,
            type_name,
            event.timestamp,
            event.actor,
            data,
            link.hash,
            link.prev_hash,
            event.company_id,
        )

    def verify_stream(self, stream_id: UUID) -> tuple[str, int, ChainCheck]:
        links, head = self.recorder.stream_links(stream_id)
        if not links and head is None:
            raise NotFound(f"no stream {stream_id}")
        return str(stream_id), len(links), check_chain(str(stream_id), (link for _, link in links), head)

    def verify_all(self) -> Iterator[tuple[str, int, ChainCheck]]:
        """Every stream of the log: its id, its number of events and its chain's check."""
        for stream_id, links, head in self.recorder.all_streams():
            yield str(stream_id), len(links), check_chain(str(stream_id), links, head)


def well_formed(event) -> bool:
    """The metadata every event records, of the right types (an altered payload may still parse)."""
    return (
        isinstance(event.timestamp, datetime)
        and isinstance(getattr(event, "actor", None), str)
        and isinstance(getattr(event, "company_id", None), str)
    )


def first_undecodable(check: ChainCheck, events: list[HistoryEvent]) -> ChainCheck:
    """A stored event that no longer decodes is broken too (if nothing broke before it)."""
    for event in events:
        if event.recorded_at is None and (check.verified or event.version < check.broken_at):
            return ChainCheck(False, event.version, "the stored event no longer decodes", check.head_hash)
    return check
