"""Delivery status callbacks (guarantee 6): statuses fold by rank and never regress, every
distinct callback is in the log and the status history, an exact repeat is recorded once;
Twilio's signed form is accepted, a bad signature or an unknown provider id appends nothing."""

from urllib.parse import urlencode

import orjson
from twilio.request_validator import RequestValidator

from tests.support import (
    count_events,
    create_channel,
    create_company,
    poll,
    queue_message,
    read_message,
    settled_message,
    sign,
)
from tests.test_sends import CUSTOMER

AUTH_TOKEN = "twilio-auth-token-0123456789"
ACCOUNT_SID = "AC" + "5a" * 16
REPORTED = "Conversation.DeliveryStatusReported"


def post_status(client, channel, payload: dict, secret: str | None = None):
    raw = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "X-Ledger-Signature": sign(secret or channel.secret, raw)}
    return client.post(f"/v1/webhooks/{channel.id}/status", content=raw, headers=headers)


def post_twilio_status(client, channel, form: dict, token: str = AUTH_TOKEN):
    url = f"{client.base_url}".rstrip("/") + f"/v1/webhooks/{channel.id}/status"
    signature = RequestValidator(token).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return client.post(url, content=urlencode(form), headers=headers)


def twilio_channel(client, tenant):
    return create_channel(
        client,
        tenant,
        kind="twilio",
        address="+18045550111",
        webhook_secret=AUTH_TOKEN,
        credentials={"account_sid": ACCOUNT_SID},
    )


def test_out_of_order_callbacks_never_move_the_status_backwards(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    sent = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    provider_id = sent["provider_message_id"]

    answers = [
        post_status(client, channel, {"provider_message_id": provider_id, "status": status})
        for status in ("delivered", "sent", "failed", "queued")
    ]
    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.json()["status"] for answer in answers] == ["delivered"] * 4
    assert count_events(db_url, REPORTED) == 4  # every distinct callback is in the log
    read = post_status(client, channel, {"provider_message_id": provider_id, "status": "read"})
    assert read.json()["status"] == "read"  # only read may follow delivered
    repeat = post_status(client, channel, {"provider_message_id": provider_id, "status": "sent"})
    assert repeat.status_code == 200 and repeat.json()["status"] == "read"
    assert count_events(db_url, REPORTED) == 5  # an exact repeat is acknowledged, not recorded twice

    def reported() -> list[str]:
        history = read_message(client, tenant, sent["id"])["status_history"]
        return [change["status"] for change in history if change["source"] == "provider"]

    poll(lambda: len(reported()) == 5, what="the status history")
    assert reported() == ["delivered", "sent", "failed", "queued", "read"]
    assert read_message(client, tenant, sent["id"])["status"] == "read"


def test_failed_after_delivered_stays_delivered_and_read_never_follows_a_failure(client, mock_providers, sending):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    first, second = (
        settled_message(client, tenant, queue_message(client, tenant, channel, to).json()["message_id"])
        for to in (CUSTOMER, "+18045550199")
    )
    for status in ("delivered", "failed"):
        answer = post_status(client, channel, {"provider_message_id": first["provider_message_id"], "status": status})
    assert answer.json()["status"] == "delivered"
    for status in ("undelivered", "read", "delivered"):
        answer = post_status(
            client, channel, {"provider_message_id": second["provider_message_id"], "status": status, "error": "30003"}
        )
    assert answer.json()["status"] == "undelivered"


def test_twilio_callbacks_signed_by_the_provider_move_the_message_to_delivered(client, mock_providers, sending):
    tenant = create_company(client)
    channel = twilio_channel(client, tenant)
    mock_providers.callbacks("sent", "delivered", delay_seconds=0.1)
    message_id = queue_message(client, tenant, channel, CUSTOMER, "via Twilio").json()["message_id"]
    settled_message(client, tenant, message_id)
    poll(lambda: read_message(client, tenant, message_id)["status"] == "delivered", what="the delivered callback")
    message = read_message(client, tenant, message_id)
    assert message["provider_message_id"].startswith("SM")
    history = [(change["source"], change["status"]) for change in message["status_history"]]
    assert history == [("ledger", "queued"), ("ledger", "sent"), ("provider", "sent"), ("provider", "delivered")]
    [request] = mock_providers.requests()
    assert request["provider"] == "twilio" and request["idempotency_key"] == message_id


def test_bad_signatures_unknown_ids_and_statuses_append_nothing(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    channel = twilio_channel(client, tenant)
    sms = create_channel(client, tenant)
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    form = {"MessageSid": message["provider_message_id"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    events_before = count_events(db_url)

    forged = post_twilio_status(client, channel, form, token="not-the-auth-token-000")
    assert forged.status_code == 401 and forged.json()["error_code"] == "invalid_signature"
    unknown = post_twilio_status(client, channel, {**form, "MessageSid": "SM" + "0" * 32})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "not_found"
    strange = post_twilio_status(client, channel, {**form, "MessageStatus": "teleported"})
    assert strange.status_code == 422
    other_channel = post_status(client, sms, {"provider_message_id": message["provider_message_id"], "status": "read"})
    assert other_channel.status_code == 404  # provider ids are claimed per channel
    unsigned = post_status(client, sms, {"provider_message_id": "x", "status": "sent"}, secret="wrong-secret")
    assert unsigned.status_code == 401
    assert count_events(db_url) == events_before

    accepted = post_twilio_status(client, channel, form)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "message_id": message["id"],
        "status": "delivered",
        "position": accepted.json()["position"],
    }
    assert count_events(db_url) == events_before + 1


def test_a_callback_that_overtakes_the_sends_answer_is_kept(client, runtime, db_url):
    """The provider may call back before the dispatcher recorded its answer: the StatusCallback
    URL names the message, so the callback is recorded, and the send's outcome folds under it."""
    from uuid import UUID

    from ledger.delivery import SendPolicy
    from ledger.providers import ProviderAnswer
    from ledger.sending import status_url

    tenant = create_company(client)
    channel = create_channel(client, tenant)
    queued = queue_message(client, tenant, channel, CUSTOMER).json()
    conversation_id, message_id = UUID(queued["conversation_id"]), queued["message_id"]
    policy = SendPolicy()
    assert runtime.ledger.begin_attempt(conversation_id, message_id, policy).action == "send"

    url = status_url(str(client.base_url).rstrip("/"), channel.id, str(conversation_id), message_id)
    raw = orjson.dumps({"provider_message_id": "sms-early", "status": "delivered"})
    headers = {"Content-Type": "application/json", "X-Ledger-Signature": sign(channel.secret, raw)}
    early = client.post(url, content=raw, headers=headers)
    assert early.status_code == 200, early.text
    assert early.json()["status"] == "delivered"
    elsewhere = client.post(url.replace(f"message_id={message_id}", "message_id=nope"), content=raw, headers=headers)
    assert elsewhere.status_code == 404

    answer = ProviderAnswer("sent", 200, provider_message_id="sms-early")
    recorded = runtime.ledger.record_outcome(conversation_id, message_id, 1, answer, policy)
    assert (recorded.status, recorded.settled) == ("delivered", True)
    read = post_status(client, channel, {"provider_message_id": "sms-early", "status": "read"})
    assert read.json()["status"] == "read"  # found by its provider id now


def test_distinct_provider_words_are_distinct_callbacks(client, db_url, mock_providers, sending):
    tenant = create_company(client)
    channel = twilio_channel(client, tenant)
    message = settled_message(client, tenant, queue_message(client, tenant, channel, CUSTOMER).json()["message_id"])
    form = {"MessageSid": message["provider_message_id"], "AccountSid": ACCOUNT_SID}
    for status in ("accepted", "queued", "queued", "partially_delivered"):
        answer = post_twilio_status(client, channel, {**form, "MessageStatus": status})
        assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "delivered"
    assert count_events(db_url, REPORTED) == 3
