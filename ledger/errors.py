"""Domain errors. The API maps each of them to one HTTP answer, in one place."""

from typing import Any


class LedgerError(Exception):
    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(LedgerError):
    pass


class Unauthorized(LedgerError):
    pass


class Forbidden(LedgerError):
    pass


class InvalidSignature(LedgerError):
    """details: {"reason": "missing" | "malformed" | "mismatched", "credential": the header or parameter checked}."""

    REASONS = ("missing", "malformed", "mismatched")

    @classmethod
    def because(cls, reason: str, credential: str, explanation: str) -> "InvalidSignature":
        return cls(f"{credential} {explanation}", {"reason": reason, "credential": credential})

    @property
    def reason(self) -> str | None:
        return self.details.get("reason") if isinstance(self.details, dict) else None


class InvalidJson(LedgerError):
    pass


class UnsupportedMediaType(LedgerError):
    pass


class Conflict(LedgerError):
    """The request contradicts what exists (e.g. a second channel with the same kind and address)."""


class Contended(LedgerError):
    """Too many concurrent writers on one stream; the caller should retry shortly."""


class Unavailable(LedgerError):
    """The event log could not be written within the configured budget; retry shortly."""


class ValidationFailed(LedgerError):
    """details: a list of {field, issue, message}."""

    @classmethod
    def single(cls, field: str, issue: str, message: str) -> "ValidationFailed":
        return cls(message, [{"field": field, "issue": issue, "message": message}])
