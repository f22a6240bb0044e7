"""Address normalization: phone numbers to E.164, email addresses to lower case.

Conversations are grouped and contacts keyed by the normalized form, so
"+1 804-555-1234" and "+18045551234" are the same participant.
"""

import re
from email.utils import parseaddr
from typing import Literal

import phonenumbers

from ledger.errors import ValidationFailed

AddressKind = Literal["phone", "email", "handle"]
MAX_HANDLE_LENGTH = 200

# RFC 5322's line limit. Longer input is no address, and parseaddr's work (and recursion) grows with it.
MAX_EMAIL_INPUT_LENGTH = 998


def normalize_phone(raw: str, field: str, default_region: str = "US") -> str:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as error:
        raise ValidationFailed.single(field, "invalid_phone", f"{field}: not a phone number ({error})") from error
    if not phonenumbers.is_possible_number(number):
        raise ValidationFailed.single(field, "invalid_phone", f"{field}: {raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str, field: str) -> str:
    if len(raw) > MAX_EMAIL_INPUT_LENGTH:
        raise ValidationFailed.single(
            field, "invalid_email", f"{field}: longer than {MAX_EMAIL_INPUT_LENGTH} characters"
        )
    try:
        _, address = parseaddr(raw)
    except RecursionError as error:  # parseaddr recurses once per nested "(" comment or ":" group
        raise not_an_email(field, raw) from error
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or "." not in domain:
        raise not_an_email(field, raw)
    return f"{local}@{domain}".lower()


def not_an_email(field: str, raw: str) -> ValidationFailed:
    return ValidationFailed.single(field, "invalid_email", f"{field}: {raw!r} is not an email address")


def normalize_handle(raw: str, field: str) -> str:
    """A name in the provider's namespace (a Slack channel such as #sales): one trimmed line."""
    handle = raw.strip()
    if not handle or len(handle) > MAX_HANDLE_LENGTH or not handle.isprintable():
        raise ValidationFailed.single(
            field, "invalid_handle", f"{field}: one line of 1 to {MAX_HANDLE_LENGTH} characters"
        )
    return handle


def masked(text: str | None, address: str) -> str | None:
    """The text with the address masked in every form a provider may write it in: a provider's free
    text (an error, a bounce) is stored unsealed, so it must hold no personal data an erasure misses."""
    if not text or address == "[erased]":
        return text
    forms = {address, address.lstrip("+")}
    if address.startswith("+"):
        number = phonenumbers.parse(address)
        forms |= {phonenumbers.format_number(number, style) for style in PHONE_STYLES}
        forms.add(str(number.national_number))
    for form in sorted(forms, key=len, reverse=True):
        text = re.sub(re.escape(form), "[address]", text, flags=re.IGNORECASE)
    return text


PHONE_STYLES = (
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
)


def normalize(kind: AddressKind, raw: str, field: str, default_region: str = "US") -> str:
    if kind == "phone":
        return normalize_phone(raw, field, default_region)
    if kind == "handle":
        return normalize_handle(raw, field)
    return normalize_email(raw, field)
