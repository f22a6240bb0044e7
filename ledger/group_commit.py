"""Group commit: concurrent writers' appends share one transaction.

Every append takes the log's lock, so appends are serial anyway; what one transaction per append
costs on top (a round trip per statement, a WAL flush per commit) is paid once per group instead.
There is no writer thread and no timer: the first caller to find nobody writing leads, commits what
is pending (its own append and whatever queued meanwhile), and goes on while its own is not done;
callers that arrive while it writes wait for their outcome or for the lead. Under load the groups
grow by themselves; alone, an append commits at once.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Append:
    """One caller's events, and what became of them: their positions, or the error that refused them."""

    events: Sequence[Any]
    positions: list[int] | None = None
    error: BaseException | None = None
    done: bool = False

    def succeed(self, positions: list[int]) -> None:
        self.positions, self.done = positions, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True


@dataclass
class GroupCommit:
    """commit: commits a group of appends in one transaction and settles each (succeed or fail);
    an exception it raises fails every append of the group still unsettled."""

    commit: Callable[[list[Append]], None]
    max_events: int = 1000
    groups: int = 0  # committed so far, and the appends in them: their ratio is the mean group size
    appends: int = 0
    _pending: list[Append] = field(default_factory=list)
    _leading: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def append(self, events: Sequence[Any]) -> list[int]:
        mine = Append(events)
        with self._changed:
            self._pending.append(mine)
            while self._leading and not mine.done:
                self._changed.wait()
            if not mine.done:
                self._leading = True
        if not mine.done:
            self._lead(mine)
        if mine.error is not None:
            raise mine.error
        return mine.positions

    def _lead(self, mine: Append) -> None:
        try:
            while not mine.done:
                with self._changed:
                    group = self._take()
                self._commit(group)
                with self._changed:
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._leading = False
                self._changed.notify_all()

    def _take(self) -> list[Append]:
        """The pending appends, oldest first, up to max_events (at least one)."""
        group, events = [], 0
        while self._pending and (not group or events + len(self._pending[0].events) <= self.max_events):
            events += len(self._pending[0].events)
            group.append(self._pending.pop(0))
        return group

    def _commit(self, group: list[Append]) -> None:
        try:
            self.commit(group)
            self.groups += 1
            self.appends += len(group)
        except Exception as error:  # not hidden: each caller of the group raises it as its own
            for append in group:
                if not append.done:
                    append.fail(error)
