"""Shared helpers for the JSON webhook kinds: signatures, parsing, previews."""

import hashlib
import hmac
import logging
import re
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import html_text
import lxml.etree
import lxml.html
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger.channels import InboundMessage, StatusReport, WebhookRequest
from ledger.delivery import STATUSES, canonical_status
from ledger.errors import InvalidJson, InvalidSignature, UnsupportedMediaType, ValidationFailed
from ledger.validation import reject_nul_characters

PREVIEW_LENGTH = 140
PREVIEW_SOURCE_CHARS = 64 * 1024
PREVIEW_SOURCE_TAGS = 2048
OVERLONG_TAG = re.compile(r"<[^<>]{2000,}>")  # matched in linear time: it cannot cross another "<"
# libxml2's HTML parser, without its default depth limit of 256 (the tags are bounded by PREVIEW_SOURCE_TAGS).
HTML_PARSER = lxml.html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
Payload = TypeVar("Payload", bound=BaseModel)
log = logging.getLogger("ledger.webhooks")
SECRET_QUERY_PARAMETERS = ("token",)


def refused(reason: str, credential: str, explanation: str, request: WebhookRequest) -> InvalidSignature:
    """The error for a request whose credential is missing, malformed or mismatched, logged with the URL
    that was checked (its secret query parameters masked); neither the secret nor the credential is logged."""
    log.warning("webhook refused: %s %s (%s); url checked: %s", credential, reason, explanation, loggable(request.url))
    return InvalidSignature.because(reason, credential, explanation)


def loggable(url: str) -> str:
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "(unparseable)"
    masked = [(name, "***" if name in SECRET_QUERY_PARAMETERS else value) for name, value in query]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="*")))


def verify_hmac(secret: str, request: WebhookRequest, header: str, algorithm: str) -> None:
    """Checks `<header>: <algorithm>=<hex HMAC(secret, raw body)>`, naming what is wrong when it fails:
    the header missing, not of that form, or not the body's signature with this secret."""
    name = canonical_header(header)
    given = request.headers.get(header, "").strip()
    if not given:
        raise refused("missing", name, "is missing", request)
    digits = hashlib.new(algorithm).digest_size * 2
    prefix, _, signature = given.partition("=")
    if prefix.lower() != algorithm or not re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", signature):
        raise refused("malformed", name, f"is malformed: expected {algorithm}=<{digits} hex digits>", request)
    expected = hmac.new(secret.encode(), request.body, getattr(hashlib, algorithm)).hexdigest()
    if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
        raise refused("mismatched", name, "does not match the body signed with the channel's webhook secret", request)


def canonical_header(header: str) -> str:
    """x-hub-signature -> X-Hub-Signature, as providers and the docs spell it."""
    return "-".join(part.capitalize() for part in header.split("-"))


def parse_json(request: WebhookRequest, model: type[Payload]) -> Payload:
    return validate(model, load_json(request))


def load_json(request: WebhookRequest) -> object:
    if request.media_type != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {request.media_type or 'nothing'}")
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise InvalidJson(f"the body is not valid JSON: {error}") from error


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
    """The text a reader sees, without tags, scripts, styles and the head, on one line, as html-text
    extracts it (no space before punctuation that followed a tag: "<p>Hi</p>, you" is "Hi, you");
    only of a bounded prefix of the HTML, which is plenty for a preview."""
    source = preview_source(html).encode("utf-8", "replace").replace(b"\x00", b"")
    try:
        root = lxml.etree.fromstring(source or b"<html/>", parser=HTML_PARSER)
    except lxml.etree.LxmlError:  # recovering, libxml2 gives up on almost nothing; no text then
        return ""
    if root is None:  # nothing but comments or whitespace
        return ""
    for head in list(root.iter("head")):
        head.drop_tree()
    return " ".join(html_text.extract_text(root, guess_layout=False).split())


def preview_source(html: str) -> str:
    """The HTML up to its PREVIEW_SOURCE_TAGS-th tag, within PREVIEW_SOURCE_CHARS.

    HTML parsers build a tree, and some of their steps grow faster than the input (Lexbor's scope
    checks walk the stack of open elements, so 200,000 nested <ul><li> took minutes): bounding the
    tags bounds the depth and the work. A tag longer than any a reader's text needs is dropped:
    libxml2 checks each attribute against the tag's others, so 16,000 attributes took over a second."""
    prefix = OVERLONG_TAG.sub("", html[:PREVIEW_SOURCE_CHARS])
    position = -1
    for _ in range(PREVIEW_SOURCE_TAGS):
        position = prefix.find("<", position + 1)
        if position < 0:
            return prefix
    return prefix[:position]
