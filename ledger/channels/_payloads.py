"""Shared helpers for the JSON webhook kinds: signatures, parsing, previews."""

import hashlib
import hmac
from html.parser import HTMLParser
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from ledger.channels import InboundMessage, WebhookRequest
from ledger.errors import InvalidJson, InvalidSignature, UnsupportedMediaType, ValidationFailed
from ledger.validation import reject_nul_characters

PREVIEW_LENGTH = 140
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


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skipping += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in ("script", "style") and self._skipping > 0

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except AssertionError:  # html.parser's answer to some malformed markup: keep what it read
        pass
    return " ".join(" ".join(extractor.parts).split())
