"""Policies: tracked consumers of the log that act through the ledger's commands.

A policy is a `Projection` with no tables of its own, run by the same projector (a batch,
its tracked position, its advisory lock), so it sees every event once in order and a crash
replays at most a batch. Its handlers call commands that are idempotent, keyed by the event
that caused them, so a replay (or `ledger rebuild <policy>`) changes nothing. A module here
exposing `build(ledger, projector)` adds a policy.
"""

from ledger.plugins import module_attributes
from projections import Projection


def build_policies(ledger, projector) -> list[Projection]:
    return [build(ledger, projector) for build in module_attributes(__name__, __path__, "build")]
