"""Contacts: the people conversations are with, keyed by the address they were first seen with."""

from uuid import UUID

from eventsourcing.utils import register_topic

from ledger.base import LedgerAggregate
from ledger.ids import natural_id


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

    def __init__(self, company_id: str, actor: str, address: str, address_kind: str) -> None:
        self.company_id = company_id
        self.addresses = [address]

    @staticmethod
    def id_for(company_id: str, address: str) -> UUID:
        return natural_id("contact", company_id, address)

    @classmethod
    def create(cls, company_id: str, address: str, address_kind: str, actor: str) -> "Contact":
        return cls._create(
            cls.Created,
            id=cls.id_for(company_id, address),
            company_id=company_id,
            actor=actor,
            address=address,
            address_kind=address_kind,
        )

    def add_address(self, address: str, address_kind: str, actor: str) -> None:
        if address not in self.addresses:
            self._record(self.AddressAdded, actor, address=address, address_kind=address_kind)


# Contacts moved here from ledger.messaging: events stored under the old topics still resolve.
register_topic("ledger.messaging:Contact", Contact)
register_topic("ledger.messaging:Contact.Created", Contact.Created)
register_topic("ledger.messaging:Contact.AddressAdded", Contact.AddressAdded)
