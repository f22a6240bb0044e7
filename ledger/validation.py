"""Input checks shared by every way in: text must be storable as PostgreSQL text."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

from ledger.errors import ValidationFailed


def reject_nul_characters(document: object) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it before anything is appended."""
    problems = [
        {"field": path or "body", "issue": "nul_character", "message": "text must not contain U+0000"}
        for path in _paths_with_nul(document)
    ]
    if problems:
        raise ValidationFailed("the payload contains a NUL character", problems)


def _paths_with_nul(document: object) -> Iterator[str]:
    """In document order. A loop, not recursion: orjson reads JSON nested deeper than Python's recursion limit."""
    pending: list[tuple[object, str]] = [(document, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                yield path
            continue
        if isinstance(value, dict):
            children = [child for key, item in value.items() for child in ((key, path), (item, _joined(path, key)))]
        elif isinstance(value, list):
            children = [(item, _joined(path, index)) for index, item in enumerate(value)]
        else:
            children = []
        pending.extend(reversed(children))


def _joined(path: str, part: object) -> str:
    return f"{path}.{part}" if path else str(part)


def to_utc(moment: datetime) -> datetime:
    """A provider's timestamp in UTC; one without a zone is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError as error:  # 9999-12-31T23:59:59-05:00 is a valid datetime, but not once in UTC
        raise ValueError("the timestamp is out of range once converted to UTC") from error


# A payload model's timestamp: converted while validating, so an out-of-range one is a
# validation error naming its field.
UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]


def utc_iso(moment: datetime | None) -> str | None:
    """The timestamp as stored: ISO 8601 in UTC."""
    return None if moment is None else to_utc(moment).isoformat()
