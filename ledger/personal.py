"""Personal data, sealed per contact, so that erasing a contact destroys one key instead of
rewriting an immutable log (crypto-shredding).

The mapper seals the personal fields of an event (bodies, previews and attachments of messages in
both directions, addresses, field values) before they are stored, under a data key of the contact the
event concerns (AES-GCM, a fresh nonce per event, the contact as associated data). Data keys live in
`ledger_contact_keys`, each sealed by the deployment's secret key. An erasure destroys them, in the
transaction that records `PersonalDataErased` (see ledger.recorder); an event whose key is gone reads
back with "[erased]" in place of each personal value. The hash chains cover the stored ciphertext, so
they verify before and after.

A contact seen again after an erasure gets a new key generation: what it says from then on is new
data, readable until the next erasure.
"""

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from threading import Lock
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from ledger.contacts import ERASED, Contact
from ledger.credentials import SecretBox
from ledger.messaging import Conversation

SEALED = "sealed:v1:"  # sealed:v1:<key generation>:<urlsafe base64 of nonce + ciphertext>
SEALED_FIELD = "sealed"  # where a stored event carries its personal values

# The personal fields of each event; the contact is the event's `contact_id`, or its originator.
PERSONAL_FIELDS: dict[type, tuple[str, ...]] = {
    Conversation.Started: ("contact_address",),
    Conversation.InboundMessageReceived: ("body", "preview", "attachments", "sender"),
    Conversation.OutboundMessageQueued: ("to", "body", "preview", "attachments"),
    Conversation.OutboundMessageImported: ("body", "preview", "attachments"),
    Contact.Created: ("address",),
    Contact.AddressAdded: ("address",),
    Contact.FieldExtracted: ("value",),
    Contact.FieldsChanged: ("changes",),
}
# The personal parts of aggregates' snapshots, by the aggregate's topic.
SNAPSHOT_FIELDS = {
    get_topic(Conversation): ("contact_address",),
    get_topic(Contact): ("addresses", "custom_fields", "provenance"),
}
ERASURE_TOPIC = get_topic(Contact.PersonalDataErased)

KEYS_DDL = """create table if not exists ledger_contact_keys (
    contact_id uuid not null,
    generation integer not null,
    sealed_key text,
    created_at timestamptz not null default now(),
    erased_at timestamptz,
    primary key (contact_id, generation))"""


class UnreadableSealedValue(ValueError):
    """A sealed value that fails authentication, or names a key that never existed: the stored
    event was altered (an erased key reads as "[erased]", not as this)."""


@dataclass(frozen=True)
class SealedStoredEvent(StoredEvent):
    """A stored event with the contact key it was sealed under, which the recorder checks is still
    alive in the transaction that appends it."""

    sealed_by: tuple[UUID, int] | None = None


class Keyring:
    """Per-contact data keys: made on first use, cached per process, destroyed by an erasure.

    A cached key may outlive its erasure in another process. Writes are safe anyway (the recorder
    refuses an append sealed under a destroyed key, and the command retries with a fresh one), the
    projections redact on the erasure event, and auditors' reads run in a `fresh()` scope."""

    def __init__(self, datastore: Any, secret_box: SecretBox) -> None:
        self._datastore = datastore
        self._box = secret_box
        self._cache: dict[UUID, dict[int, AESGCM | None]] = {}
        # How often each contact was forgotten: a refresh that read before a forget must not cache what it read.
        self._forgotten: dict[UUID, int] = {}
        self._lock = Lock()
        self._fresh: ContextVar[dict | None] = ContextVar("fresh_keys", default=None)

    def current(self, contact_id: UUID) -> tuple[int, AESGCM]:
        """The contact's live key of the latest generation, made when there is none."""
        generations = self._generations(contact_id)
        for _ in range(10):
            latest = max(generations, default=0)
            if generations.get(latest) is not None:
                return latest, generations[latest]
            self._make(contact_id, latest + 1)
            generations = self.refresh(contact_id)
        raise RuntimeError(f"no live key could be made for contact {contact_id}")

    def key(self, contact_id: UUID, generation: int) -> AESGCM | None:
        """The key of that generation, or None when it was erased."""
        generations = self._generations(contact_id)
        if generation not in generations:
            generations = self.refresh(contact_id)
        if generation not in generations:
            raise UnreadableSealedValue(f"contact {contact_id} never had a key of generation {generation}")
        return generations[generation]

    def refresh(self, contact_id: UUID) -> dict[int, AESGCM | None]:
        with self._lock:
            forgotten = self._forgotten.get(contact_id, 0)
        with self._datastore.get_connection() as conn:
            rows = conn.execute(
                "select generation, sealed_key from ledger_contact_keys where contact_id = %s", [contact_id]
            ).fetchall()
        generations = {row["generation"]: self._open(contact_id, row) for row in rows}
        fresh = self._fresh.get()
        if fresh is not None:
            fresh[contact_id] = generations
        with self._lock:
            if self._forgotten.get(contact_id, 0) == forgotten:
                self._cache[contact_id] = generations
        return generations

    def forget(self, contact_id: UUID) -> None:
        with self._lock:
            self._cache.pop(contact_id, None)
            self._forgotten[contact_id] = self._forgotten.get(contact_id, 0) + 1

    @contextmanager
    def fresh(self) -> Iterator[None]:
        """Within it, each contact's keys are read from the database once, whatever is cached:
        what an auditor reads reflects every erasure committed before the read began."""
        token = self._fresh.set({})
        try:
            yield
        finally:
            self._fresh.reset(token)

    def _generations(self, contact_id: UUID) -> dict[int, AESGCM | None]:
        fresh = self._fresh.get()
        if fresh is not None:
            return fresh[contact_id] if contact_id in fresh else self.refresh(contact_id)
        with self._lock:
            cached = self._cache.get(contact_id)
        return cached if cached is not None else self.refresh(contact_id)

    def _make(self, contact_id: UUID, generation: int) -> None:
        key = base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()
        sealed = self._box.seal(key, key_context(contact_id, generation))
        with self._datastore.get_connection() as conn:
            conn.execute(
                """insert into ledger_contact_keys (contact_id, generation, sealed_key) values (%s, %s, %s)
                   on conflict do nothing""",
                [contact_id, generation, sealed],
            )

    def _open(self, contact_id: UUID, row: dict) -> AESGCM | None:
        if row["sealed_key"] is None:
            return None
        key = self._box.open(row["sealed_key"], key_context(contact_id, row["generation"]))
        return AESGCM(base64.urlsafe_b64decode(key.encode()))


def key_context(contact_id: UUID, generation: int) -> str:
    return f"contact-key:{contact_id}:{generation}"


class SealingMapper(Mapper):
    """eventsourcing's mapper, sealing personal fields on the way in and opening them on the way out.

    A stored event keeps its personal fields in their erased form ("[erased]" for each value set, in the
    value's shape: lists and mappings keep their length and keys, None stays None) and carries their values
    in one sealed field: one AES-GCM operation per event. Reading it back replaces the erased forms with
    the values while the key lives; once it is destroyed, the event reads as erased."""

    keyring: Keyring  # set by the Ledger once its recorder exists

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        sealing = personal_parts(domain_event)
        if sealing is None:
            return super().to_stored_event(domain_event)
        contact_id, fields = sealing
        generation, key = self.keyring.current(contact_id)
        sealed = {field: erased_form(value, field) for field, value in fields.items()}
        sealed[SEALED_FIELD] = seal(fields, key, generation, contact_id)
        state = dict(vars(domain_event))
        if isinstance(domain_event, Snapshot):
            state["state"] = {**domain_event.state, **sealed}
        else:
            state.update(sealed)
        sealed_event = object.__new__(type(domain_event))
        object.__setattr__(sealed_event, "__dict__", state)
        stored = super().to_stored_event(sealed_event)
        return SealedStoredEvent(*vars(stored).values(), sealed_by=(contact_id, generation))

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        fields = event.state if isinstance(event, Snapshot) else vars(event)
        sealed = fields.pop(SEALED_FIELD, None)
        if sealed is not None:
            contact_id = contact_of(event)
            values = unseal(sealed, lambda generation: self.keyring.key(contact_id, generation), contact_id)
            if values is not None:
                fields.update(values)
        return event


def contact_of(event: Any) -> UUID:
    """The contact an event's personal data is of: a conversation's contact, or the contact itself."""
    fields = event.state if isinstance(event, Snapshot) else vars(event)
    contact_id = fields.get("contact_id")
    return UUID(str(contact_id)) if contact_id is not None else event.originator_id


def personal_parts(event: Any) -> tuple[UUID, dict[str, Any]] | None:
    """The contact an event's personal fields belong to, and those fields; None when it has none.
    A conversation's snapshot holds one: the contact's address; a contact's, its addresses and values."""
    if isinstance(event, Snapshot):
        names, fields = SNAPSHOT_FIELDS.get(event.topic), event.state
    else:
        names, fields = PERSONAL_FIELDS.get(type(event)), vars(event)
    if not names:
        return None
    return contact_of(event), {name: fields[name] for name in names if name in fields}


def erased_form(value: Any, field: str = "") -> Any:
    """What the value reads as once erased: each value set is "[erased]", in the value's shape. Of a
    provenance, only the values are personal: the method, source, time and actor of each stay."""
    if field == "provenance":
        return {name: {**entry, "value": erased_form(entry.get("value"))} for name, entry in value.items()}
    if value is None:
        return None
    if isinstance(value, list):
        return [erased_form(item) for item in value]
    if isinstance(value, dict):
        return {name: erased_form(item) for name, item in value.items()}
    return ERASED


def seal(values: dict[str, Any], key: AESGCM, generation: int, contact_id: UUID) -> str:
    nonce = os.urandom(12)
    sealed = key.encrypt(nonce, orjson.dumps(values), str(contact_id).encode())
    return f"{SEALED}{generation}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(sealed: str, key_of, contact_id: UUID) -> dict[str, Any] | None:
    """The sealed values, or None when their key was destroyed (the event then reads as erased)."""
    try:
        if not sealed.startswith(SEALED):
            raise ValueError("not a sealed value")
        generation, _, token = sealed[len(SEALED) :].partition(":")
        key = key_of(int(generation))
        if key is None:
            return None
        raw = base64.urlsafe_b64decode(token.encode())
        return orjson.loads(key.decrypt(raw[:12], raw[12:], str(contact_id).encode()))
    except (ValueError, AttributeError, InvalidTag) as error:
        raise UnreadableSealedValue(f"the sealed data of contact {contact_id} does not open") from error
