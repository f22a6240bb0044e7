"""SendGrid: outbound email through the v3 mail send API, inbound email through Inbound Parse.

Inbound Parse posts `multipart/form-data` (`from`, `to`, `subject`, `text`, `html`, `headers`, `envelope`,
`charsets`, `attachments`, `attachment-info` and the files `attachment1`...) and signs nothing: the
channel's webhook secret is a token in the webhook URL's query (`?token=`), compared in constant time.
Messages are deduplicated on the `Message-ID` header. Attachments are listed by file name; their
contents are not stored. Status callbacks are the ledger's JSON shape, posted to the status URL with
the same token.
"""

import hmac
from dataclasses import dataclass, field
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import orjson
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from ledger.channels import InboundMessage, StatusReport, WebhookRequest
from ledger.channels._payloads import StatusPayload, html_to_text, parse_json, preview, refused, status_report
from ledger.errors import InvalidJson, UnsupportedMediaType, ValidationFailed
from ledger.validation import reject_nul_characters

MULTIPART = "multipart/form-data"
TOKEN = "token"
MAX_MESSAGE_ID = 998  # a header line's limit
TEXT_FIELDS = ("from", "to", "subject", "text", "html", "headers", "envelope", "charsets", "attachment-info")


@dataclass
class Form:
    """The text fields (the first of each name) and the file names of the file parts, by field name."""

    fields: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


class FormReader:
    """python-multipart's streaming parser's callbacks, collecting a Form; a file's contents are not kept."""

    def __init__(self) -> None:
        self.form = Form()
        self.headers: dict[bytes, bytes] = {}
        self.header_name, self.header_value = bytearray(), bytearray()
        self.name, self.filename, self.data = "", None, bytearray()

    def callbacks(self) -> dict:
        return {
            "on_header_field": lambda data, start, end: self.header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def header_end(self) -> None:
        self.headers[bytes(self.header_name).strip().lower()] = bytes(self.header_value).strip()
        self.header_name, self.header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, disposition = parse_options_header(self.headers.pop(b"content-disposition", b""))
        self.headers.clear()
        self.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        self.filename = None if filename is None else filename.decode("utf-8", "replace")
        self.data = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.filename is None:
            self.data += data[start:end]

    def part_end(self) -> None:
        if self.filename is not None:
            self.form.files.setdefault(self.name, self.filename)
        else:
            self.form.fields.setdefault(self.name, bytes(self.data))


def read_multipart(request: WebhookRequest) -> Form:
    if request.media_type != MULTIPART:
        raise UnsupportedMediaType(f"expected {MULTIPART}, got {request.media_type or 'nothing'}")
    _, options = parse_options_header(request.headers.get("content-type", ""))
    if not options.get(b"boundary"):
        raise InvalidJson("the multipart body has no boundary in its Content-Type")
    reader = FormReader()
    try:
        parser = MultipartParser(options[b"boundary"], reader.callbacks(), max_header_count=16)
        parser.write(request.body)
    except FormParserError as error:  # the boundary too long, or the body not multipart
        raise InvalidJson(f"the body is not valid multipart/form-data: {error}") from error
    if parser.state != MultipartState.END:
        raise InvalidJson("the body is not valid multipart/form-data: it ends before its closing boundary")
    return reader.form


def text_fields(form: Form) -> dict[str, str]:
    """Each text field decoded in the charset Inbound Parse names for it in `charsets` (UTF-8 otherwise)."""
    charsets = json_field(form, "charsets", dict) or {}
    decoded = {}
    for name in TEXT_FIELDS:
        raw = form.fields.get(name)
        if raw is not None:
            decoded[name] = decode(raw, charsets.get(name))
    reject_nul_characters(decoded)
    return decoded


def decode(raw: bytes, charset: object) -> str:
    try:
        return raw.decode(charset if isinstance(charset, str) else "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", "replace")


def json_field(form: Form, name: str, shape: type) -> object:
    raw = form.fields.get(name)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ValidationFailed.single(name, "invalid_json", f"{name} is not valid JSON") from error
    if not isinstance(value, shape):
        raise ValidationFailed.single(name, "invalid_type", f"{name} must be a JSON {shape.__name__}")
    return value


def attachment_names(form: Form) -> list[str]:
    """From `attachment-info` ({"attachment1": {"filename", "name", "type"}}), else the file parts."""
    info = json_field(form, "attachment-info", dict)
    if info is None:
        return [form.files[name] for name in sorted(form.files)]
    names = []
    for key in sorted(info):
        item = info[key] if isinstance(info[key], dict) else {}
        name = item.get("filename") or item.get("name") or form.files.get(key) or key
        names.append(str(name))
    return names


def required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise ValidationFailed.single(name, "missing", f"{name} is required")
    return value


def message_id_and_date(raw_headers: str):
    headers = HeaderParser().parsestr(raw_headers)
    message_id = " ".join(str(headers.get("message-id", "")).split())
    if not message_id:
        raise ValidationFailed.single("headers", "missing_message_id", "headers has no Message-ID to deduplicate on")
    if len(message_id) > MAX_MESSAGE_ID:
        message = f"Message-ID is over {MAX_MESSAGE_ID} characters"
        raise ValidationFailed.single("headers", "invalid_message_id", message)
    try:
        sent_at = parsedate_to_datetime(str(headers["date"])) if headers.get("date") else None
    except (TypeError, ValueError):
        sent_at = None
    return message_id, sent_at if sent_at is None or sent_at.tzinfo else None


def recipients(fields: dict[str, str], form: Form) -> list[str]:
    """The SMTP recipients (`envelope.to`), else the addresses of the `to` header."""
    envelope = json_field(form, "envelope", dict) or {}
    to = envelope.get("to")
    if isinstance(to, list) and all(isinstance(address, str) for address in to) and to:
        return to
    return [address for _, address in getaddresses([fields.get("to", "")]) if address] or [required(fields, "to")]


class SendgridKind:
    name = "sendgrid"
    address_kind = "email"
    acknowledgement = None
    secret_query_parameter = TOKEN  # the webhook and status URLs carry the secret (Inbound Parse signs nothing)

    def verify(self, secret: str, request: WebhookRequest) -> None:
        try:
            given = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(TOKEN, [])
        except ValueError:
            given = []
        if not given or not given[0]:
            raise refused("missing", TOKEN, "is missing from the webhook URL's query (?token=)", request)
        if len(given) > 1:
            raise refused("malformed", TOKEN, "is given more than once in the webhook URL's query", request)
        if not hmac.compare_digest(given[0].encode(), secret.encode()):
            raise refused("mismatched", TOKEN, "is not the channel's webhook secret", request)

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        form = read_multipart(request)
        fields = text_fields(form)
        message_id, sent_at = message_id_and_date(required(fields, "headers"))
        to = recipients(fields, form)
        html, text = fields.get("html", ""), fields.get("text", "")
        return [
            InboundMessage(
                provider_message_id=message_id,
                sender=required(fields, "from"),
                recipient=to[0],
                recipients=to[1:],
                body=html or text,
                preview=preview(html_to_text(html) if html.strip() else text),
                message_type="email",
                attachments=attachment_names(form),
                sent_at=sent_at,
            )
        ]

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        payload = parse_json(request, StatusPayload)
        return status_report(payload.provider_message_id, payload.status, payload.error)


KIND = SendgridKind()
