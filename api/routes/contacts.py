"""Contacts: a search, a person's changes to a contact's fields, and erasure."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import (
    Caller,
    MinPosition,
    json_body,
    parse_id,
    projected_position,
    read_model,
    runtime_of,
)
from api.models import RequestBody
from api.schemas import AUTHENTICATED, POSITIONED, WITH_BODY, ContactOut, request_body
from ledger.contact_commands import (
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_KEY_LENGTH,
    MAX_CUSTOM_TEXT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PHONE_LENGTH,
)
from ledger.contacts import FIELDS, Contact
from projections import contacts

router = APIRouter(prefix="/v1", tags=["contacts"])


class ContactPage(BaseModel):
    items: list[ContactOut] = Field(description="most recently changed first")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")


@router.get(
    "/contacts",
    response_model=ContactPage,
    response_model_exclude_unset=True,
    responses={**POSITIONED, **AUTHENTICATED},
    description="The company's contacts (any member). `query` finds those whose name, email, phone or one of "
    "whose addresses contains it, ignoring case; a phone-like query (`(804) 555`) also matches by digits. "
    "Erased values match nothing.",
)
async def search_contacts(
    request: Request,
    response: Response,
    caller: Caller,
    query: str | None = Query(
        default=None, min_length=1, max_length=320, pattern=r"^[^\x00]*$", examples=["alex", "(804) 555"]
    ),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
    min_position: int | None = MinPosition,
) -> dict:
    runtime = runtime_of(request)
    await projected_position(runtime, response, [contacts.PROJECTION.name], min_position)
    items, next_cursor = await read_model(runtime, contacts.search_contacts, caller.company_id, query, limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


CustomKey = Annotated[str, Field(min_length=1, max_length=MAX_CUSTOM_KEY_LENGTH)]
CustomValue = (
    Annotated[str, Field(max_length=MAX_CUSTOM_TEXT_LENGTH)]
    | bool
    | int  # up to MAX_CUSTOM_INTEGER in size, which the ledger checks: a bound here would let a float take it
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)


class ContactChanges(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Alex Smith", "email": "alex@example.com", "custom_fields": {"plan": "pro", "vip": True}},
                {"phone": "(804) 555-0123", "custom_fields": {"seats": 3}},
            ]
        }
    )

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_LENGTH, description="null clears it; absent: unchanged"
    )
    email: str | None = Field(default=None, min_length=1, max_length=320, description="checked with email-validator")
    phone: str | None = Field(
        default=None, min_length=1, max_length=MAX_PHONE_LENGTH, description="normalized to E.164"
    )
    custom_fields: dict[CustomKey, CustomValue] = Field(
        default_factory=dict,
        max_length=MAX_CUSTOM_FIELDS,
        description="set each key to its value; null deletes the key; keys not named are kept",
    )


class ContactChangedOut(ContactOut):
    position: int = Field(description="the log position of the change (of the log's head when it changed nothing)")


@router.patch(
    "/contacts/{contact_id}",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [ContactChanges]}),
    description="A person's values: they win over any extraction from messages, before and after. Answers the "
    "contact with the change, as GET /v1/contacts/{id} shows it once the read model reached `position`.",
)
def update_contact(
    contact_id: str, request: Request, caller: Caller, body: Annotated[ContactChanges, json_body(ContactChanges)]
) -> ContactChangedOut:
    contact, position = runtime_of(request).ledger.update_contact(
        caller, parse_id(contact_id, "contact"), body.model_dump(exclude_unset=True)
    )
    return ContactChangedOut(**contact_answer(contact), position=position)


class ErasedOut(BaseModel):
    contact_id: str
    erased: bool = Field(description="always true: the contact's data keys are destroyed")
    position: int = Field(description="the log position of PersonalDataErased; reads with min_position show it")


@router.delete(
    "/contacts/{contact_id}/personal-data",
    responses=AUTHENTICATED,
    description="Crypto-shredding (admin): destroys the contact's data keys. Message bodies (both directions), "
    'addresses and field values recorded before read back as "[erased]" everywhere, history included; the log '
    "is not rewritten and its hash chains still verify. A new message from the same address still joins the "
    "same conversation and is readable again.",
)
def erase_personal_data(contact_id: str, request: Request, caller: Caller) -> ErasedOut:
    position = runtime_of(request).ledger.erase_personal_data(caller, parse_id(contact_id, "contact"))
    return ErasedOut(contact_id=str(parse_id(contact_id, "contact")), erased=True, position=position)


def contact_answer(contact: Contact) -> dict:
    """The contact as the contacts read model shows it: both apply the same rules (ledger.contacts)."""
    return {
        "id": contact.id,
        "addresses": contact.addresses,
        **{field: contact.value_of(field) for field in FIELDS},
        "custom_fields": contact.custom_fields,
        "provenance": contact.provenance,
        "erased": contact.erased,
    }
