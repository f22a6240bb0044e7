"""Contacts with their addresses and the provenance of each field."""

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.contacts import Contact
from projections import Projection

PROJECTION = Projection(
    "contacts",
    ddl=[
        """create table if not exists contacts (
            id uuid primary key,
            company_id uuid not null,
            addresses jsonb not null,
            name text,
            email text,
            phone text,
            custom_fields jsonb not null default '{}',
            provenance jsonb not null default '{}',
            created_at timestamptz not null,
            updated_at timestamptz not null
        )"""
    ],
    tables=["contacts"],
)
FIELD_OF_ADDRESS_KIND = {"phone": "phone", "email": "email"}


@PROJECTION.on(Contact.Created)
def created(cursor, event: Contact.Created, position: int) -> None:
    cursor.execute(
        """insert into contacts (id, company_id, addresses, provenance, created_at, updated_at)
           values (%s, %s, %s, '{}', %s, %s)""",
        [event.originator_id, event.company_id, Jsonb([]), event.recorded_at, event.recorded_at],
    )
    add_address(cursor, event.originator_id, event.address, event.address_kind, event.recorded_at)


@PROJECTION.on(Contact.AddressAdded)
def address_added(cursor, event: Contact.AddressAdded, position: int) -> None:
    add_address(cursor, event.originator_id, event.address, event.address_kind, event.recorded_at)


def add_address(cursor, contact_id, address: str, address_kind: str, at) -> None:
    """The address, and the field it fills if that is still empty (a Slack handle fills none)."""
    field = FIELD_OF_ADDRESS_KIND.get(address_kind)
    if field is None:
        cursor.execute(
            "update contacts set addresses = addresses || %s, updated_at = %s where id = %s",
            [Jsonb([address]), at, contact_id],
        )
        return
    cursor.execute(
        f"""update contacts set addresses = addresses || %s,
                {field} = coalesce({field}, %s),
                provenance = case when {field} is null then provenance || %s else provenance end,
                updated_at = %s
            where id = %s""",
        [Jsonb([address]), address, Jsonb({field: _address_provenance(address, at)}), at, contact_id],
    )


def _address_provenance(address: str, at) -> dict:
    return {"value": address, "source_message_id": None, "method": "address", "at": at.isoformat()}


def get_contact(conn: Connection, company_id: str, contact_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            """select id, addresses, name, email, phone, custom_fields, provenance
               from contacts where company_id = %s and id = %s""",
            [company_id, contact_id],
        ).fetchone()
