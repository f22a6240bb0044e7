"""The log's hash chains: each event's hash covers its stream, version, type, stored payload and
the previous event's hash, so altering, deleting or reordering a stored event breaks the chain
from there on. Each stream's head (version and hash) is also kept outside the stream, written in
the same transaction, so deleting a stream's last events is detected too.

The hash is SHA-256 over the RFC 8785 (JSON Canonicalization Scheme) encoding of
{"stream", "version", "type", "payload" (the stored bytes, base64), "prev_hash"}.
"""

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import rfc8785

GENESIS = "0" * 64  # the prev_hash of every stream's first event


def event_hash(stream_id: str, version: int, topic: str, payload: bytes, prev_hash: str) -> str:
    document = {
        "stream": str(stream_id),
        "version": version,
        "type": topic,
        "payload": base64.b64encode(payload).decode(),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


@dataclass(frozen=True)
class StoredLink:
    """One stored event of a stream with the hashes stored for it (None: no hash row)."""

    version: int
    topic: str
    payload: bytes
    hash: str | None
    prev_hash: str | None


@dataclass(frozen=True)
class ChainCheck:
    verified: bool
    broken_at: int | None = None  # the first version that does not verify
    reason: str | None = None
    head_hash: str | None = None  # the hash of the last event, recomputed


def check_chain(stream_id: str, links: Iterable[StoredLink], head: tuple[int, str] | None) -> ChainCheck:
    """Recomputes the stream's chain from its stored events (in version order) and compares it with
    the stored hashes and with the stream's anchored head (version, hash)."""
    prev_hash, expected_version = GENESIS, 1
    for link in links:
        if link.version != expected_version:
            return ChainCheck(False, expected_version, f"version {expected_version} is missing", prev_hash)
        computed = event_hash(stream_id, link.version, link.topic, link.payload, prev_hash)
        if link.prev_hash != prev_hash or link.hash != computed:
            return ChainCheck(False, link.version, "the stored event does not match its hash", prev_hash)
        prev_hash, expected_version = computed, expected_version + 1
    last_version = expected_version - 1
    if head is not None and head != (last_version, prev_hash):
        head_version, _ = head
        if head_version > last_version:
            return ChainCheck(False, last_version + 1, f"events after version {last_version} are missing", prev_hash)
        return ChainCheck(False, head_version, "the stream does not end at its anchored head", prev_hash)
    if head is None and last_version > 0:
        return ChainCheck(False, 1, "the stream has no anchored head", prev_hash)
    return ChainCheck(True, head_hash=prev_hash if last_version else None)
