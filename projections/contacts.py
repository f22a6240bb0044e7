"""Contacts with their addresses and the provenance of each field.

The rules of which source's value shows (an address, an extraction, a person) are those of the
Contact aggregate (ledger.contacts), applied here by the same functions to the row's provenance."""

import re
from collections.abc import Callable

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.contacts import (
    ERASED,
    FIELDS,
    Contact,
    apply_extraction,
    apply_person_changes,
    erase_values,
    erased_addresses,
    fill_from_address,
)
from projections import Projection
from projections.summaries import decode_cursor, encode_cursor

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
        )""",
        "alter table contacts add column if not exists erased boolean not null default false",
        "create index if not exists contacts_activity on contacts (company_id, updated_at desc, id desc)",
    ],
    tables=["contacts"],
)

COLUMNS = "id, addresses, name, email, phone, custom_fields, provenance, erased"
PHONE_LIKE = re.compile(r"[\d\s+().-]+")
MIN_PHONE_DIGITS = 3
# The texts of a contact a search looks in: its fields and each of its addresses, but erased values.
TEXTS = """(select text from (select name union all select email union all select phone
            union all select jsonb_array_elements_text(addresses)) as texts(text) where text <> %s) as texts"""


@PROJECTION.on(Contact.Created)
def created(cursor, event: Contact.Created, position: int) -> None:
    provenance: dict = {}
    fill_from_address(provenance, event.address, event.address_kind, event.recorded_at, event.actor)
    cursor.execute(
        """insert into contacts (id, company_id, addresses, name, email, phone, provenance, created_at, updated_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        [
            event.originator_id,
            event.company_id,
            Jsonb([event.address]),
            *values_of(provenance),
            Jsonb(provenance),
            event.recorded_at,
            event.recorded_at,
        ],
    )


@PROJECTION.on(Contact.AddressAdded)
def address_added(cursor, event: Contact.AddressAdded, position: int) -> None:
    cursor.execute(
        "update contacts set addresses = addresses || %s where id = %s", [Jsonb([event.address]), event.originator_id]
    )
    change_fields(
        cursor,
        event,
        lambda provenance, custom: fill_from_address(
            provenance, event.address, event.address_kind, event.recorded_at, event.actor
        ),
    )


@PROJECTION.on(Contact.FieldExtracted)
def field_extracted(cursor, event: Contact.FieldExtracted, position: int) -> None:
    change_fields(
        cursor,
        event,
        lambda provenance, custom: apply_extraction(
            provenance,
            event.field,
            event.value,
            event.source_message_id,
            event.method,
            event.recorded_at,
            event.actor,
        ),
    )


@PROJECTION.on(Contact.FieldsChanged)
def fields_changed(cursor, event: Contact.FieldsChanged, position: int) -> None:
    change_fields(
        cursor,
        event,
        lambda provenance, custom: apply_person_changes(
            provenance, custom, event.changes, event.recorded_at, event.actor
        ),
    )


@PROJECTION.on(Contact.PersonalDataErased)
def personal_data_erased(cursor, event: Contact.PersonalDataErased, position: int) -> None:
    """What the erased events read back as (the aggregate applies the same functions)."""
    addresses = cursor.execute("select addresses from contacts where id = %s", [event.originator_id]).fetchone()[0]
    cursor.execute(
        "update contacts set addresses = %s, erased = true where id = %s",
        [Jsonb(erased_addresses(addresses)), event.originator_id],
    )
    change_fields(cursor, event, erase_values)


def change_fields(cursor, event, change: Callable[[dict, dict], None]) -> None:
    """Applies the change to the row's provenance and custom fields, and the fields' columns after them."""
    provenance, custom_fields = cursor.execute(
        "select provenance, custom_fields from contacts where id = %s", [event.originator_id]
    ).fetchone()
    change(provenance, custom_fields)
    cursor.execute(
        """update contacts set name = %s, email = %s, phone = %s, custom_fields = %s, provenance = %s, updated_at = %s
           where id = %s""",
        [*values_of(provenance), Jsonb(custom_fields), Jsonb(provenance), event.recorded_at, event.originator_id],
    )


def values_of(provenance: dict) -> list:
    return [provenance.get(field, {}).get("value") for field in FIELDS]


def get_contact(conn: Connection, company_id: str, contact_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"select {COLUMNS} from contacts where company_id = %s and id = %s",
            [company_id, contact_id],
        ).fetchone()


def search_contacts(
    conn: Connection, company_id: str, query: str | None, limit: int, cursor_token: str | None
) -> tuple[list[dict], str | None]:
    """The company's contacts whose name, email, phone or an address contains the query (ignoring case;
    a phone-like query also matches by digits alone), most recently changed first. Erased values
    ("[erased]") match nothing. The cursor is the (updated_at, id) of the last contact served."""
    where, params = ["company_id = %s"], [company_id]
    if query:
        matches, params = ["text ilike %s"], [*params, ERASED, f"%{escape_like(query)}%"]
        digits = re.sub(r"\D", "", query) if PHONE_LIKE.fullmatch(query) else ""
        if len(digits) >= MIN_PHONE_DIGITS:  # "(804) 555" finds +18045550123
            matches.append("regexp_replace(text, '\\D', '', 'g') like %s")
            params.append(f"%{digits}%")
        where.append(f"exists (select 1 from {TEXTS} where {' or '.join(matches)})")
    if cursor_token:
        updated_at, last_id = decode_cursor(cursor_token)
        where.append("(updated_at, id) < (%s, %s)")
        params += [updated_at, last_id]
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            f"""select {COLUMNS}, updated_at from contacts where {" and ".join(where)}
                order by updated_at desc, id desc limit %s""",
            [*params, limit + 1],
        ).fetchall()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]["updated_at"], str(page[-1]["id"])) if len(rows) > limit else None
    return [{key: value for key, value in row.items() if key != "updated_at"} for row in page], next_cursor


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
