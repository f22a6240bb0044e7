"""Contact fields: what the extraction policy found in a message, and a person's changes.
Mixed into the Ledger."""

import math
from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from ledger.addresses import MAX_EMAIL_INPUT_LENGTH, normalize_phone
from ledger.contacts import Contact
from ledger.errors import ValidationFailed
from ledger.recorder import KeyDestroyed
from ledger.tenancy import check_name

EXTRACTION = "policy:extraction"
EDITORS = ("admin", "agent")
ERASERS = ("admin",)
MAX_NAME_LENGTH = 200
MAX_PHONE_LENGTH = 64
MAX_CUSTOM_FIELDS = 50  # in one change
MAX_CUSTOM_KEY_LENGTH = 100
MAX_CUSTOM_TEXT_LENGTH = 2000
MAX_CUSTOM_INTEGER = 2**53  # what every JSON reader takes exactly


class ContactCommands:
    """The Ledger's contact commands (self is the Ledger)."""

    def record_extractions(
        self, contact_id: UUID, source_message_id: str, extracted: list, actor: str = EXTRACTION
    ) -> int | None:
        """The fields found in one message (items with field, value and method), keyed by the message:
        a message already extracted from records nothing, so a replay of the policy changes nothing.
        The position, or None when nothing was recorded."""

        def run() -> int | None:
            contact = self.find(Contact, contact_id)
            if contact is None or not contact.record_extractions(source_message_id, extracted, actor):
                return None
            try:
                return self.commit(contact)
            except KeyDestroyed:  # the message was erased since it was read: what it said must not come back
                return None

        return self.retry_on_conflict(run)

    def update_contact(self, principal, contact_id: UUID, changes: dict[str, Any]) -> tuple[Contact, int]:
        """A person's change of name, email, phone (None clears one) and custom fields ({key: value, or
        None to delete it}), checked and normalized first. It wins over any extraction, before and after.
        A change that changes nothing appends nothing (the position is then the log's head)."""
        principal.require(*EDITORS)
        checked = self._checked_contact_changes(changes)

        def run() -> tuple[Contact, int]:
            contact = self.get_owned(Contact, contact_id, principal.company_id)
            changed = contact.change_fields(checked, principal.actor)
            return contact, self.commit(contact) if changed else self.head_position()

        return self.retry_on_conflict(run)

    def erase_personal_data(self, principal, contact_id: UUID) -> int:
        """Crypto-shredding: records PersonalDataErased, whose append destroys the contact's data keys
        in the same transaction (ledger.recorder). Every message body, address and field value of the
        contact recorded before it reads "[erased]" from then on; the log itself is not rewritten."""
        principal.require(*ERASERS)

        def run() -> int:
            contact = self.get_owned(Contact, contact_id, principal.company_id)
            contact.erase(principal.actor)
            return self.commit(contact)

        position = self.retry_on_conflict(run)
        self.keyring.forget(contact_id)
        return position

    def _checked_contact_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        checks = {"name": check_contact_name, "email": check_email, "phone": self._check_contact_phone}
        for field, check in checks.items():
            if field in changes:
                checked[field] = None if changes[field] is None else check(changes[field], field)
        custom_fields = changes.get("custom_fields") or {}
        if len(custom_fields) > MAX_CUSTOM_FIELDS:
            raise ValidationFailed.single(
                "custom_fields", "too_many", f"custom_fields: at most {MAX_CUSTOM_FIELDS} in one change"
            )
        if custom_fields:
            checked["custom_fields"] = {
                check_custom_key(key): check_custom_value(key, value) for key, value in custom_fields.items()
            }
        return checked

    def _check_contact_phone(self, raw: str, field: str) -> str:
        if len(raw) > MAX_PHONE_LENGTH:
            raise ValidationFailed.single(field, "invalid_phone", f"{field}: longer than {MAX_PHONE_LENGTH} characters")
        return normalize_phone(raw, field, self.default_region)


def check_contact_name(raw: str, field: str) -> str:
    if len(raw) > MAX_NAME_LENGTH:
        raise ValidationFailed.single(field, "too_long", f"{field}: longer than {MAX_NAME_LENGTH} characters")
    return check_name(raw, field).strip()


def check_custom_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_CUSTOM_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.single(
            f"custom_fields.{key}",
            "invalid_key",
            f"a custom field's name is one line of 1 to {MAX_CUSTOM_KEY_LENGTH} printable characters",
        )
    return key


def check_custom_value(key: str, value: object) -> object:
    """A JSON scalar every reader takes as it is: text, a boolean, a finite number; None deletes the field."""
    field = f"custom_fields.{key}"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_CUSTOM_TEXT_LENGTH:
            raise ValidationFailed.single(
                field, "too_long", f"{field}: longer than {MAX_CUSTOM_TEXT_LENGTH} characters"
            )
        return value
    if isinstance(value, int) and abs(value) <= MAX_CUSTOM_INTEGER:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValidationFailed.single(
        field, "invalid_value", f"{field}: text, a boolean, a finite number (integers up to 2^53) or null"
    )


def check_email(raw: str, field: str) -> str:
    """The address as email-validator normalizes it (the domain in lower case), as extractions record it."""
    if len(raw) > MAX_EMAIL_INPUT_LENGTH:
        raise ValidationFailed.single(
            field, "invalid_email", f"{field}: longer than {MAX_EMAIL_INPUT_LENGTH} characters"
        )
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationFailed.single(field, "invalid_email", f"{field}: not an email address ({error})") from error
