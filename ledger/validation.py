"""Input checks shared by every way in: text must be storable as PostgreSQL text."""

from collections.abc import Iterator
from datetime import UTC, datetime

from ledger.errors import ValidationFailed


def reject_nul_characters(document: object) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it before anything is appended."""
    problems = [
        {"field": path or "body", "issue": "nul_character", "message": "text must not contain U+0000"}
        for path in _paths_with_nul(document, "")
    ]
    if problems:
        raise ValidationFailed("the payload contains a NUL character", problems)


def _paths_with_nul(value: object, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_with_nul(key, path)
            yield from _paths_with_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_with_nul(item, f"{path}.{index}" if path else str(index))


def utc_iso(moment: datetime | None) -> str | None:
    """A provider's timestamp in UTC; one without a zone is taken as UTC."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()
