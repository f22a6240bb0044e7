"""A refused webhook says why: its credential missing, malformed or mismatched, in the message and in
`details.reason`; the server logs the reason (for Twilio, with the URL it checked), never the secret."""

import base64
import hashlib
import logging
from urllib.parse import urlencode

import orjson
import pytest
from twilio.request_validator import RequestValidator

from tests.support import count_events, create_channel, create_company, sign, sms_payload
from tests.test_status_callbacks import AUTH_TOKEN, twilio_channel

LOGGER = "ledger.webhooks"
FORM = "application/x-www-form-urlencoded"


def refusal(response) -> tuple[str, str]:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == "invalid_signature"
    return body["details"]["reason"], body["message"]


@pytest.mark.parametrize("path", ["", "/status"])
def test_x_ledger_signature_refusals_name_the_reason(client, db_url, caplog, path):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    raw = orjson.dumps(sms_payload(channel))
    before = count_events(db_url)
    signatures = {
        "missing": None,
        "malformed": "sha256=not-hex",
        "mismatched": sign("another-secret", raw),
    }

    messages = {}
    for expected, signature in signatures.items():
        headers = {"Content-Type": "application/json"} | ({"X-Ledger-Signature": signature} if signature else {})
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            reason, messages[expected] = refusal(
                client.post(f"/v1/webhooks/{channel.id}{path}", content=raw, headers=headers)
            )
        assert reason == expected
    assert messages == {
        "missing": "X-Ledger-Signature is missing",
        "malformed": "X-Ledger-Signature is malformed: expected sha256=<64 hex digits>",
        "mismatched": "X-Ledger-Signature does not match the body signed with the channel's webhook secret",
    }
    assert count_events(db_url) == before
    logged = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert [line.split(" (")[0] for line in logged] == [
        "webhook refused: X-Ledger-Signature missing",
        "webhook refused: X-Ledger-Signature malformed",
        "webhook refused: X-Ledger-Signature mismatched",
    ]
    assert all(channel.secret not in line for line in logged)


def test_twilio_signature_refusals_name_the_reason_and_log_the_url_checked(client, db_url, caplog):
    tenant = create_company(client)
    channel = twilio_channel(client, tenant)
    url = f"{client.base_url}".rstrip("/") + f"/v1/webhooks/{channel.id}"
    form = {"MessageSid": "SM1", "From": "+18045551234", "To": channel.address, "Body": "Hi", "NumMedia": "0"}
    wrong = base64.b64encode(hashlib.sha1(b"not it").digest()).decode()
    signatures = {"missing": None, "malformed": "not base64!", "mismatched": wrong}
    before = count_events(db_url)

    for expected, signature in signatures.items():
        headers = {"Content-Type": FORM} | ({"X-Twilio-Signature": signature} if signature else {})
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            reason, message = refusal(client.post(url, content=urlencode(form), headers=headers))
        assert reason == expected
        assert message.startswith("X-Twilio-Signature ")

    assert count_events(db_url) == before
    logged = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert len(logged) == 3
    assert all(f"url checked: {url}" in line for line in logged)
    assert all(AUTH_TOKEN not in line for line in logged)
    signed = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    accepted = client.post(url, content=urlencode(form), headers={"Content-Type": FORM, "X-Twilio-Signature": signed})
    assert accepted.status_code == 201, accepted.text


def test_a_token_in_the_url_is_masked_in_the_log(client, caplog):
    tenant = create_company(client)
    body = {"kind": "sendgrid", "address": "support@acme.test", "credentials": {"api_key": "SG.key.0123456789"}}
    channel = client.post("/v1/channels", json=body, headers=tenant.auth).json()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        response = client.post(f"/v1/webhooks/{channel['id']}?token=guessed-token", files={"from": (None, "a@b.test")})

    assert refusal(response)[0] == "mismatched"
    [line] = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert "token=***" in line
    assert "guessed-token" not in line and channel["webhook_secret"] not in line
