"""Contacts: the people conversations are with, keyed by the address they were first seen with.

A contact's fields (name, email, phone) each carry their provenance: the value, the message it came
from, the method that found it, when and by whom. Three sources fill them, by these rules, which the
aggregate and the contacts read model both apply through the functions below:
- an address the contact is seen with fills its field (phone or email) while that is empty;
- an extraction from a message's text sets the field, unless a person set it;
- a person's change (PATCH /v1/contacts/{id}) always sets it, and only a person changes it after that.
Custom fields are set and deleted by people only.
"""

from typing import Any
from uuid import UUID

from eventsourcing.utils import register_topic

from ledger.base import LedgerAggregate
from ledger.ids import natural_id

FIELDS = ("name", "email", "phone")
FIELD_OF_ADDRESS_KIND = {"phone": "phone", "email": "email"}
PERSON = "person"  # the method of a value a person set
ADDRESS = "address"  # the method of a value taken from the address the contact was seen with
CUSTOM_PREFIX = "custom_fields."  # the provenance of custom field k is under "custom_fields.k"
ERASED = "[erased]"  # what reads show in place of erased personal data


class Contact(LedgerAggregate):
    """Keyed by (company, normalized address) of the address it was first seen with."""

    class Created(LedgerAggregate.Created):
        address: str
        address_kind: str

    class AddressAdded(LedgerAggregate.Event):
        address: str
        address_kind: str

        def apply(self, contact: "Contact") -> None:
            contact.addresses.append(self.address)
            fill_from_address(contact.provenance, self.address, self.address_kind, self.recorded_at, self.actor)

    class FieldExtracted(LedgerAggregate.Event):
        """A field found in a message's text. Recorded even when a person's value keeps it from showing."""

        field: str  # name, email or phone
        value: str
        source_message_id: str
        method: str  # how it was found: "pattern:my name is", "email-validator", "phonenumbers"

        def apply(self, contact: "Contact") -> None:
            if self.source_message_id not in contact.extracted_from:
                contact.extracted_from.append(self.source_message_id)
            apply_extraction(
                contact.provenance,
                self.field,
                self.value,
                self.source_message_id,
                self.method,
                self.recorded_at,
                self.actor,
            )

    class FieldsChanged(LedgerAggregate.Event):
        """A person's change: any of name, email, phone (None clears it) and custom_fields
        ({key: value, or None to delete it}). Holds only what it changes."""

        changes: dict

        def apply(self, contact: "Contact") -> None:
            apply_person_changes(contact.provenance, contact.custom_fields, self.changes, self.recorded_at, self.actor)

    class PersonalDataErased(LedgerAggregate.Event):
        """The contact's data keys were destroyed with this event (ledger.personal): every personal
        value recorded before it reads "[erased]" from now on."""

        def apply(self, contact: "Contact") -> None:
            contact.addresses = erased_addresses(contact.addresses)
            erase_values(contact.provenance, contact.custom_fields)
            contact.erased = True
            contact.erased_at = self.timestamp.isoformat()

    # 2: `provenance`, `custom_fields` and `extracted_from` were added; 3: `erased`; 4: `erased_at`.
    # Contacts are snapshotted only by hand, so these upcast such snapshots only.
    class_version = 4

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state.update(provenance={}, custom_fields={}, extracted_from=[])

    @staticmethod
    def upcast_v2_v3(state: dict) -> None:
        state["erased"] = False

    @staticmethod
    def upcast_v3_v4(state: dict) -> None:
        state["erased_at"] = None

    def __init__(self, company_id: str, actor: str, address: str, address_kind: str) -> None:
        self.company_id = company_id
        self.addresses = [address]
        self.provenance: dict[str, dict] = {}  # field -> {value, source_message_id, method, at, actor}
        self.custom_fields: dict[str, Any] = {}
        self.extracted_from: list[str] = []  # the messages extractions were recorded from
        self.erased = False  # its personal data was erased (it may have been seen again since)
        self.erased_at: str | None = None  # when it last was (ISO time)
        fill_from_address(self.provenance, address, address_kind, self.created_on, actor)

    @staticmethod
    def id_for(company_id: str, address_key: str) -> UUID:
        """address_key: the keyed hash of the address (Ledger.address_key), so that the id reveals no
        address and still finds the contact after its addresses were erased."""
        return natural_id("contact", company_id, address_key)

    @classmethod
    def create(cls, company_id: str, address: str, address_key: str, address_kind: str, actor: str) -> "Contact":
        return cls._create(
            cls.Created,
            id=cls.id_for(company_id, address_key),
            company_id=company_id,
            actor=actor,
            address=address,
            address_kind=address_kind,
        )

    def value_of(self, field: str) -> Any:
        return self.provenance.get(field, {}).get("value")

    def add_address(self, address: str, address_kind: str, actor: str) -> None:
        if address not in self.addresses:
            self._record(self.AddressAdded, actor, address=address, address_kind=address_kind)

    def record_extractions(self, source_message_id: str, extracted: list, actor: str) -> bool:
        """One FieldExtracted per field found in the message (items with field, value and method),
        once: a message already extracted from records nothing. True when something was recorded."""
        if not extracted or source_message_id in self.extracted_from:
            return False
        for found in extracted:
            self._record(
                self.FieldExtracted,
                actor,
                field=found.field,
                value=found.value,
                source_message_id=source_message_id,
                method=found.method,
            )
        return True

    def change_fields(self, changes: dict, actor: str) -> bool:
        """A person's change, of what it changes: a field is changed unless a person already set it to
        that value, a custom field unless it already has that value (or, for None, is absent).
        True when something was recorded."""
        effective = {
            field: changes[field]
            for field in FIELDS
            if field in changes and not (self.set_by_person(field) and same(self.value_of(field), changes[field]))
        }
        custom = {  # a custom field's value is never None: None there is an absent key
            key: value
            for key, value in changes.get("custom_fields", {}).items()
            if not same(self.custom_fields.get(key), value)
        }
        if custom:
            effective["custom_fields"] = custom
        if not effective:
            return False
        self._record(self.FieldsChanged, actor, changes=effective)
        return True

    def set_by_person(self, field: str) -> bool:
        return set_by_person(self.provenance, field)

    def erase(self, actor: str) -> None:
        """Always recorded, even twice: each erasure destroys the keys made since the last one."""
        self._record(self.PersonalDataErased, actor)


def same(a: object, b: object) -> bool:
    """Equal and of the same type: True is not 1, 1 is not 1.0."""
    return type(a) is type(b) and a == b


def provenance_entry(value: Any, source_message_id: str | None, method: str, at, actor: str | None) -> dict:
    return {
        "value": value,
        "source_message_id": source_message_id,
        "method": method,
        "at": at.isoformat(),
        "actor": actor,
    }


def set_by_person(provenance: dict, field: str) -> bool:
    return provenance.get(field, {}).get("method") == PERSON


def fill_from_address(provenance: dict, address: str, address_kind: str, at, actor: str | None) -> None:
    """The field the address is of (a Slack handle fills none), if it is still empty and no person
    emptied it."""
    field = FIELD_OF_ADDRESS_KIND.get(address_kind)
    if field is None or provenance.get(field, {}).get("value") is not None or set_by_person(provenance, field):
        return
    provenance[field] = provenance_entry(address, None, ADDRESS, at, actor)


def apply_extraction(
    provenance: dict, field: str, value: str, source_message_id: str, method: str, at, actor: str
) -> None:
    """The latest extraction wins over an address and an earlier extraction; never over a person."""
    if not set_by_person(provenance, field):
        provenance[field] = provenance_entry(value, source_message_id, method, at, actor)


def apply_person_changes(provenance: dict, custom_fields: dict, changes: dict, at, actor: str) -> None:
    for field in FIELDS:
        if field in changes:
            provenance[field] = provenance_entry(changes[field], None, PERSON, at, actor)
    for key, value in changes.get("custom_fields", {}).items():
        if value is None:
            custom_fields.pop(key, None)
            provenance.pop(CUSTOM_PREFIX + key, None)
        else:
            custom_fields[key] = value
            provenance[CUSTOM_PREFIX + key] = provenance_entry(value, None, PERSON, at, actor)


def erased_addresses(addresses: list[str]) -> list[str]:
    return [ERASED for _ in addresses]


def erase_values(provenance: dict, custom_fields: dict) -> None:
    """What reading the erased events back gives: every value that was set reads "[erased]"; a value
    cleared (None) stays cleared."""
    for entry in provenance.values():
        if entry.get("value") is not None:
            entry["value"] = ERASED
    for key in custom_fields:
        custom_fields[key] = ERASED


# Contacts moved here from ledger.messaging: events stored under the old topics still resolve.
register_topic("ledger.messaging:Contact", Contact)
register_topic("ledger.messaging:Contact.Created", Contact.Created)
register_topic("ledger.messaging:Contact.AddressAdded", Contact.AddressAdded)
