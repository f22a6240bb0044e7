"""Shared helpers for the JSON webhook kinds: signatures, parsing, previews."""

import hashlib
import hmac
from typing import TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from selectolax.lexbor import LexborHTMLParser

from ledger.channels import InboundMessage, StatusReport, WebhookRequest
from ledger.delivery import STATUSES, canonical_status
from ledger.errors import InvalidJson, InvalidSignature, UnsupportedMediaType, ValidationFailed
from ledger.validation import reject_nul_characters

PREVIEW_LENGTH = 140
PREVIEW_SOURCE_CHARS = 64 * 1024
PREVIEW_SOURCE_TAGS = 2048
Payload = TypeVar("Payload", bound=BaseModel)


def verify_hmac(secret: str, request: WebhookRequest, header: str, algorithm: str) -> None:
    """Checks `<header>: <algorithm>=<hex HMAC(secret, raw body)>`."""
    given = request.headers.get(header, "")
    expected = hmac.new(secret.encode(), request.body, getattr(hashlib, algorithm)).hexdigest()
    if not hmac.compare_digest(given.encode(), f"{algorithm}={expected}".encode()):
        raise InvalidSignature(f"missing or wrong {header}")


def parse_json(request: WebhookRequest, model: type[Payload]) -> Payload:
    if request.media_type != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {request.media_type or 'nothing'}")
    try:
        document = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise InvalidJson(f"the body is not valid JSON: {error}") from error
    return validate(model, document)


def validate(model: type[Payload], document: object) -> Payload:
    reject_nul_characters(document)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ValidationFailed("the payload is not valid", validation_details(error)) from error


def validation_details(error: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "issue": item["type"], "message": item["msg"]}
        for item in error.errors()
    ]


class StatusPayload(BaseModel):
    """A JSON status callback: `{provider_message_id, status, error?}`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"provider_message_id": "sms-1", "status": "delivered"}]})

    provider_message_id: str = Field(min_length=1, max_length=200)
    status: str = Field(json_schema_extra={"enum": list(STATUSES)})
    error: str | None = Field(default=None, max_length=200)

    @field_validator("status")
    @classmethod
    def known_status(cls, status: str) -> str:
        if canonical_status(status) is None:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        return status


def status_report(provider_message_id: str, provider_status: str, error: str | None) -> StatusReport:
    """provider_status must be one canonical_status() knows."""
    return StatusReport(provider_message_id, canonical_status(provider_status), error or None, provider_status)


class SignedJsonKind:
    """A kind whose provider posts JSON signed with X-Ledger-Signature (HMAC-SHA256)."""

    acknowledgement = None
    payload_model: type[BaseModel]

    def verify(self, secret: str, request: WebhookRequest) -> None:
        verify_hmac(secret, request, "x-ledger-signature", "sha256")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        return self.messages(parse_json(request, self.payload_model))

    def messages(self, payload) -> list[InboundMessage]:
        raise NotImplementedError

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        payload = parse_json(request, StatusPayload)
        return status_report(payload.provider_message_id, payload.status, payload.error)


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def html_to_text(html: str) -> str:
    """The text a reader sees, without tags, scripts and styles, whitespace collapsed; only of a
    bounded prefix of the HTML, which is plenty for a preview."""
    document = LexborHTMLParser(preview_source(html))
    document.strip_tags(["script", "style", "head"], recursive=True)
    return " ".join(document.text(separator=" ").split())


def preview_source(html: str) -> str:
    """The HTML up to its PREVIEW_SOURCE_TAGS-th tag, within PREVIEW_SOURCE_CHARS.

    Lexbor builds a tree, and some of its steps are quadratic (the scope checks walk the stack of
    open elements, so 200,000 nested <ul><li> take minutes): bounding the tags bounds the depth."""
    prefix = html[:PREVIEW_SOURCE_CHARS]
    position = -1
    for _ in range(PREVIEW_SOURCE_TAGS):
        position = prefix.find("<", position + 1)
        if position < 0:
            return prefix
    return prefix[:position]
