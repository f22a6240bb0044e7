"""Deterministic identifiers: the same natural key always names the same stream.

Two writers that derive an id from the same key collide on the event store's
primary key (originator_id, originator_version) inside their own transaction,
which is what makes deduplication exact under concurrency.
"""

from uuid import UUID, uuid5

LEDGER_NAMESPACE = UUID("6f1c5f0e-3d8a-5b7e-9a51-2c4e8d7b1a90")


def natural_id(kind: str, *parts: object) -> UUID:
    key = "\x1f".join([kind, *(str(part) for part in parts)])
    return uuid5(LEDGER_NAMESPACE, key)
