"""Every channel kind's parser, and the address normalization after it, answers any input with a
domain error or messages: nothing else escapes to become a 500. Pure unit tests, no servers."""

import contextlib
import itertools
import json
import string
import time
from datetime import datetime
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.addresses import normalize
from ledger.channels import WebhookRequest, channel_kinds
from ledger.channels._payloads import html_to_text, preview
from ledger.errors import InvalidJson, InvalidSignature, UnsupportedMediaType, ValidationFailed
from ledger.validation import utc_iso

DOMAIN_ERRORS = (InvalidJson, UnsupportedMediaType, ValidationFailed)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# A valid payload of each kind (and how it is encoded), the shape the fuzzed ones start from.
VALID_JSON_PAYLOADS = {
    "sms": {
        "from": "+1 804-555-1234",
        "to": "+18045550100",
        "type": "mms",
        "messaging_provider_id": "msg-1",
        "body": "Hello",
        "attachments": ["https://example.com/a.png"],
        "timestamp": "2026-11-22T10:00:00Z",
    },
    "email": {
        "from": "Ann <Ann@Example.com>",
        "to": "support@example.com",
        "xillio_id": "x-1",
        "body": "<p>Hello <b>there</b></p>",
        "attachments": [],
        "timestamp": "2026-11-22T10:00:00+01:00",
    },
    "whatsapp": {
        "from": "+18045551234",
        "text": "Hi",
        "channel_message_id": "wa-1",
        "timestamp": "2026-11-22T10:00:00",
    },
}
VALID_FORM_PAYLOADS = {
    "twilio": {
        "MessageSid": "SM1",
        "From": "+18045551234",
        "To": "+18045550100",
        "Body": "Hello",
        "NumMedia": "1",
        "MediaUrl0": "https://example.com/a.png",
    },
}
KINDS = sorted(channel_kinds())


def parse_and_normalize(kind_name: str, request: WebhookRequest) -> None:
    """What the webhook route and Ledger.ingest do with a request before anything is appended."""
    kind = channel_kinds()[kind_name]
    try:
        for message in kind.parse(request):
            normalize(kind.address_kind, message.sender, "from", "US")
            if message.recipient is not None:
                normalize(kind.address_kind, message.recipient, "to", "US")
            utc_iso(message.sent_at)
    except DOMAIN_ERRORS as error:
        orjson.dumps({"message": error.message, "details": error.details})  # the error body must be renderable


def request(body: bytes, content_type: str) -> WebhookRequest:
    return WebhookRequest(url="https://ledger.example/v1/webhooks/1", headers={"content-type": content_type}, body=body)


# -- strategies -------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates and NUL included
phone_like = st.text(st.sampled_from("+0123456789 -().x#*٠١٢٣٤٥٦٧٨٩０１２３４５６７８９ext;"), max_size=40)
email_like = st.emails() | st.text(st.sampled_from('ab.@<>()":;,[]\\ \t'), max_size=60)
sizes = st.sampled_from(sorted({2**power + step for power in range(13) for step in (-1, 0, 1)}))  # and off by one
deeply_nested = st.builds(
    lambda opener, depth, rest: opener * depth + rest, st.sampled_from('(<:"[\\'), sizes, email_like
)
addresses = phone_like | email_like | deeply_nested
huge_integers = st.integers(min_value=-(10**400), max_value=10**400)
utc_offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"
)
moments = st.datetimes() | st.sampled_from([datetime.min, datetime.max])
timestamps = st.builds(lambda moment, offset: moment.isoformat() + offset, moments, utc_offsets | st.just(""))
markup_characters = st.sampled_from(tuple("<>/!-?[]&#x;=\" '\nabpé\x00\ud800"))
markup = st.lists(markup_characters | st.sampled_from(["script", "style", "head", "svg", "table"]), max_size=80).map(
    "".join
)
# Values aimed at what a field's parser does with them; the other fields get any JSON value.
VALUES_BY_FIELD = {
    "from": addresses,
    "to": addresses,
    "From": addresses,
    "To": addresses,
    "timestamp": timestamps,
    "body": markup,
    "NumMedia": huge_integers.map(str) | phone_like,
}
scalars = st.none() | st.booleans() | huge_integers | st.floats() | any_text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=8,
)
content_types = st.sampled_from(
    [JSON, f"{JSON}; charset=latin-1", FORM, "multipart/form-data; boundary=x", "", "text/plain"]
)
content_types |= st.text(max_size=30)


@st.composite
def fuzzed_document(draw, valid: dict) -> dict:
    """The valid payload with one field replaced, maybe one dropped, maybe a few added."""
    names = st.sampled_from(list(valid))
    replaced, dropped = draw(names), draw(st.sets(names, max_size=1))
    document = {name: value for name, value in valid.items() if name not in dropped}
    document[replaced] = draw(VALUES_BY_FIELD.get(replaced, json_values))
    document.update(draw(st.dictionaries(any_text, json_values, max_size=2)))
    return document


def as_form_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def shaped_bodies(kind_name: str) -> st.SearchStrategy[tuple[bytes, str]]:
    if kind_name in VALID_FORM_PAYLOADS:
        forms = fuzzed_document(VALID_FORM_PAYLOADS[kind_name])
        encoded = forms.map(
            lambda form: urlencode({name: as_form_value(value) for name, value in form.items()}, errors="surrogatepass")
        )
        return st.tuples(encoded.map(str.encode), st.just(FORM))
    documents = fuzzed_document(VALID_JSON_PAYLOADS[kind_name]) if kind_name in VALID_JSON_PAYLOADS else json_values
    return st.tuples(documents.map(json_bytes), st.just(JSON))


def json_bytes(document: object) -> bytes:
    """With json.dumps, not orjson: it writes what orjson refuses to (lone surrogates, NaN, integers past 64 bits)."""
    return json.dumps(document).encode()


def nested_json(opener: str, depth: int) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


arbitrary_bodies = (
    st.binary(max_size=200)
    | any_text.map(lambda text: text.encode("utf-8", "surrogatepass"))
    | json_values.map(json_bytes)
    | st.builds(nested_json, st.sampled_from(["[", '{"a":']), sizes)
)
latin1_text = st.text(st.characters(max_codepoint=255), max_size=30)  # what HTTP headers decode to
hosts = st.sampled_from(["ledger.example", "ledger.example:8443", "[::1]:80"]) | st.text("ab.:[]09%@", max_size=12)
urls = st.builds("{}://{}/v1/webhooks/1".format, st.sampled_from(["http", "https"]), hosts | latin1_text) | latin1_text


# -- the fuzz tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind_name", KINDS)
@FUZZ
@given(data=st.data())
def test_shaped_payloads_raise_only_domain_errors(kind_name, data):
    body, content_type = data.draw(shaped_bodies(kind_name))
    parse_and_normalize(kind_name, request(body, content_type))


@pytest.mark.parametrize("kind_name", KINDS)
@FUZZ
@given(body=arbitrary_bodies, content_type=content_types)
def test_arbitrary_bodies_raise_only_domain_errors(kind_name, body, content_type):
    parse_and_normalize(kind_name, request(body, content_type))


@pytest.mark.parametrize("kind_name", KINDS)
@FUZZ
@given(url=urls, signature=latin1_text, body=arbitrary_bodies, content_type=content_types)
def test_signature_checks_raise_only_domain_errors(kind_name, url, signature, body, content_type):
    signatures = {name: signature for name in ("x-ledger-signature", "x-twilio-signature", "x-hub-signature")}
    signed = WebhookRequest(url=url, headers={"content-type": content_type, **signatures}, body=body)
    with contextlib.suppress(InvalidSignature, *DOMAIN_ERRORS):
        channel_kinds()[kind_name].verify("webhook-secret", signed)


@pytest.mark.parametrize("address_kind", ["phone", "email"])
@FUZZ
@given(raw=deeply_nested | addresses | any_text)
def test_addresses_normalize_or_raise_validation_failed(address_kind, raw):
    with contextlib.suppress(ValidationFailed):
        normalize(address_kind, raw, "from", "US")


@pytest.mark.parametrize("kind_name", [*VALID_JSON_PAYLOADS, *VALID_FORM_PAYLOADS])
def test_the_valid_payloads_the_fuzzing_starts_from_parse(kind_name):
    if kind_name in VALID_FORM_PAYLOADS:
        body, content_type = urlencode(VALID_FORM_PAYLOADS[kind_name]).encode(), FORM
    else:
        body, content_type = orjson.dumps(VALID_JSON_PAYLOADS[kind_name]), JSON
    [message] = channel_kinds()[kind_name].parse(request(body, content_type))
    assert message.sender and message.body


# -- regressions found by the fuzzing ---------------------------------------------------------


@pytest.mark.parametrize("kind_name", ["sms", "email", "whatsapp"])
@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_timestamp_out_of_range_in_utc_is_a_validation_error_on_its_field(kind_name, timestamp):
    payload = {**VALID_JSON_PAYLOADS[kind_name], "timestamp": timestamp}
    with pytest.raises(ValidationFailed) as raised:
        channel_kinds()[kind_name].parse(request(orjson.dumps(payload), JSON))
    assert [problem["field"] for problem in raised.value.details] == ["timestamp"]


def test_timestamps_are_converted_to_utc_while_parsing():
    payload = {**VALID_JSON_PAYLOADS["sms"], "timestamp": "2024-01-01T00:00:00+20:00"}
    [message] = channel_kinds()["sms"].parse(request(orjson.dumps(payload), JSON))
    assert utc_iso(message.sent_at) == "2023-12-31T04:00:00+00:00"


@pytest.mark.parametrize("kind_name", KINDS)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_as_deep_as_orjson_reads_is_a_domain_error(kind_name, opener):
    parse_and_normalize(kind_name, request(nested_json(opener, 1023), JSON))


@pytest.mark.parametrize("url", ["http://ledger.example:99999/v1/webhooks/1", "http://[ledger.example/v1/webhooks/1"])
def test_a_twilio_signature_on_a_url_that_does_not_parse_is_invalid(url):
    form = urlencode(VALID_FORM_PAYLOADS["twilio"]).encode()
    with pytest.raises(InvalidSignature):
        channel_kinds()["twilio"].verify("auth-token", WebhookRequest(url, {"content-type": FORM}, form))


@pytest.mark.parametrize("raw", ["(" * 900 + "a@b.example", ":" * 997, "a" * 5000 + "@b.example"])
def test_deeply_nested_or_huge_email_addresses_are_validation_errors(raw):
    with pytest.raises(ValidationFailed):
        normalize("email", raw, "from")


# -- email previews ---------------------------------------------------------------------------


def test_the_preview_is_the_text_without_tags_scripts_and_styles():
    html = (
        "<html><head><title>Receipt</title><style>p { color: red }</style></head>"
        "<body><script>alert(1)</script><p>Hello\n\n  <b>Ann</b>,</p><!-- note --><p>5 &lt; 6&nbsp;&amp; more</p>"
    )
    assert html_to_text(html) == "Hello Ann, 5 < 6 & more"  # no space before the comma after </b>
    assert html_to_text("<p>broken</p><![foo[bar") == "broken"
    assert preview(html_to_text("<p>" + "word " * 100 + "</p>")) == ("word " * 28)[:139] + "…"


def attribute_names(count: int) -> list[str]:
    """Distinct and short, for as many as fit in the HTML a preview reads: Lexbor checks each new
    attribute against those its tag already has."""
    names = itertools.chain.from_iterable(itertools.product(string.ascii_lowercase, repeat=size) for size in (1, 2, 3))
    return ["".join(name) for name in itertools.islice(names, count)]


@pytest.mark.parametrize(
    "hostile",
    [
        "</" * 125_000,  # quadratic in html.parser
        "<ul><li>" * 131_072,  # quadratic in Lexbor's tree building: deep nesting
        "<a><b><i><u><s>" * 70_000,  # the adoption agency algorithm
        "<a" + "".join(f" {name}" for name in attribute_names(16_000)) + ">",  # quadratic in libxml2
    ],
)
def test_the_preview_of_hostile_html_is_computed_quickly(hostile):
    started = time.process_time()
    preview(html_to_text(hostile))
    assert time.process_time() - started < 1


def test_the_preview_reads_past_a_large_head():
    styles = "<style>" + "p { margin: 0 }\n" * 2000 + "</style>"  # 32 KB, as some newsletters have
    assert html_to_text(f"<html><head>{styles}</head><body><p>Your order shipped</p></body></html>") == (
        "Your order shipped"
    )
