"""Twilio's form-encoded inbound message webhook, signed with X-Twilio-Signature.

The signature is base64(HMAC-SHA1(auth token, URL + each POST parameter's name and
value, sorted by name then value)), checked against the URL without a port and with
the default one, as Twilio's own RequestValidator does.
"""

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from ledger.channels import Acknowledgement, InboundMessage, StatusReport, WebhookRequest
from ledger.channels._payloads import preview, refused, status_report, validate
from ledger.delivery import STATUSES, canonical_status
from ledger.errors import InvalidJson, UnsupportedMediaType, ValidationFailed

FORM = "application/x-www-form-urlencoded"
HEADER = "X-Twilio-Signature"


class TwilioPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    MessageSid: str = Field(min_length=1)
    From: str = Field(min_length=1)
    To: str = Field(min_length=1)
    Body: str = ""
    NumMedia: int = Field(default=0, ge=0, le=10)


class TwilioStatusPayload(BaseModel):
    """Twilio's status callback form (the fields the ledger reads; the rest is tolerated)."""

    model_config = ConfigDict(extra="allow")

    MessageSid: str = Field(min_length=1)
    MessageStatus: str = Field(min_length=1, json_schema_extra={"enum": list(STATUSES)})
    ErrorCode: str | None = None


def form_params(request: WebhookRequest) -> list[tuple[str, str]]:
    if request.media_type != FORM:
        raise UnsupportedMediaType(f"expected {FORM}, got {request.media_type or 'nothing'}")
    try:
        return parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=bool(request.body))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidJson(f"the body is not a valid form: {error}") from error


def compute_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    values_by_name: dict[str, set[str]] = {}
    for name, value in params:
        values_by_name.setdefault(name, set()).add(value)
    signed = url + "".join(name + value for name in sorted(values_by_name) for value in sorted(values_by_name[name]))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def well_formed(signature: str) -> bool:
    try:
        return len(base64.b64decode(signature, validate=True)) == hashlib.sha1().digest_size
    except ValueError:  # binascii.Error: not base64
        return False


def url_variants(url: str) -> set[str]:
    """The URL without its port and with the scheme's default port, as Twilio signs either."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # from a Host header that is no host ("[::1", "x:99999"): only the URL as called can match
        return {url}
    host = parts.netloc.split(":")[0] if port else parts.netloc
    with_port = parts.netloc if port else f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"
    return {urlunsplit(parts._replace(netloc=host)), urlunsplit(parts._replace(netloc=with_port))}


class TwilioKind:
    name = "twilio"
    address_kind = "phone"
    acknowledgement = Acknowledgement(b'<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml")

    def verify(self, secret: str, request: WebhookRequest) -> None:
        given = request.headers.get("x-twilio-signature", "").strip()
        if not given:
            raise refused("missing", HEADER, "is missing", request)
        if not well_formed(given):
            raise refused("malformed", HEADER, "is malformed: expected the base64 of a 20-byte HMAC-SHA1", request)
        params = form_params(request)
        for url in url_variants(request.url):
            if hmac.compare_digest(given.encode(), compute_signature(secret, url, params).encode()):
                return
        raise refused(
            "mismatched", HEADER, "does not match this URL and form signed with the channel's auth token", request
        )

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        form = dict(form_params(request))
        payload = validate(TwilioPayload, form)
        media = [form[f"MediaUrl{index}"] for index in range(payload.NumMedia) if f"MediaUrl{index}" in form]
        return [
            InboundMessage(
                provider_message_id=payload.MessageSid,
                sender=payload.From,
                recipient=payload.To,
                body=payload.Body,
                preview=preview(payload.Body),
                message_type="mms" if media else "sms",
                attachments=media,
            )
        ]

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        payload = validate(TwilioStatusPayload, dict(form_params(request)))
        if canonical_status(payload.MessageStatus) is None:
            raise ValidationFailed.single(
                "MessageStatus", "unknown_status", f"MessageStatus must be one of {', '.join(STATUSES)}"
            )
        return status_report(payload.MessageSid, payload.MessageStatus, payload.ErrorCode)


KIND = TwilioKind()
