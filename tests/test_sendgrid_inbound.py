"""SendGrid Inbound Parse: a real multipart/form-data post, authenticated by the ?token= of the webhook
URL, deduplicated on the Message-ID header, the HTML kept and a natural text preview derived."""

from urllib.parse import urlsplit

import orjson

from tests.support import count_events, create_company, read_conversation

ADDRESS = "support@acme.test"
MESSAGE_ID = "<CAF=abc123@mail.example.com>"
RECEIVED = "Conversation.InboundMessageReceived"


def sendgrid_channel(client, tenant) -> dict:
    body = {"kind": "sendgrid", "address": ADDRESS, "credentials": {"api_key": "SG.test-key.0123456789"}}
    response = client.post("/v1/channels", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return response.json()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def inbound_parse(message_id: str | None = MESSAGE_ID, **fields) -> dict:
    headers = "Received: by mx.sendgrid.net with SMTP\r\n"
    headers += f"Message-ID: {message_id}\r\n" if message_id else ""
    headers += "Date: Sat, 22 Nov 2025 10:00:00 +0000\r\nSubject: Late order\r\nFrom: Ann Lee <Ann@Example.com>\r\n"
    return {
        "headers": headers,
        "dkim": "{@example.com : pass}",
        "to": f"Acme Support <{ADDRESS}>",
        "from": "Ann Lee <Ann@Example.com>",
        "subject": "Late order",
        "text": "Hi there, my order is late\n",
        "html": "<html><head><title>Late order</title></head><body><p>Hi there</p>, my order is late</body></html>",
        "sender_ip": "203.0.113.9",
        "envelope": orjson.dumps({"to": [ADDRESS], "from": "ann@example.com"}).decode(),
        "charsets": orjson.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}).decode(),
        "SPF": "pass",
        "attachments": "1",
        "attachment-info": orjson.dumps(
            {"attachment1": {"filename": "receipt.pdf", "name": "receipt.pdf", "type": "application/pdf"}}
        ).decode(),
        **fields,
    }


RECEIPT = {"attachment1": ("receipt.pdf", b"%PDF-1.4\n% a receipt\n", "application/pdf")}


def post_parse(client, url: str, form: dict, files: dict | None = None):
    """httpx encodes the form and files as multipart/form-data, as SendGrid posts them (without files too:
    each field as a part without a file name)."""
    if files == {}:
        return client.post(path_of(url), files={name: (None, value) for name, value in form.items()})
    return client.post(path_of(url), data=form, files=files if files is not None else RECEIPT)


def test_an_inbound_parse_post_with_an_attachment_is_appended(client, db_url, work):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    assert urlsplit(channel["webhook_url"]).query == f"token={channel['webhook_secret']}"

    response = post_parse(client, channel["webhook_url"], inbound_parse())

    assert response.status_code == 201, response.text
    answer = response.json()
    work()
    timeline = read_conversation(client, tenant, answer["conversation_id"], answer["position"])
    [message] = timeline["messages"]
    assert message["body"].startswith("<html><head><title>Late order</title>")  # the HTML is kept
    assert message["attachments"] == ["receipt.pdf"]  # the file's name; its contents are not stored
    assert message["provider_message_id"] == MESSAGE_ID
    assert message["sent_at"] == "2025-11-22T10:00:00Z"
    assert message["type"] == "email"
    assert timeline["last_message_preview"] == "Hi there, my order is late"  # no " ," after the </p>
    assert timeline["participants"] == ["ann@example.com", ADDRESS]
    listed = client.get(f"/v1/channels/{channel['id']}", headers=tenant.auth).json()
    assert "token" not in listed["webhook_url"]  # the secret is returned once, with the channel


def test_a_text_only_email_keeps_its_text(client, work):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    form = {key: value for key, value in inbound_parse().items() if key not in ("html", "attachments")}
    form.pop("attachment-info")

    answer = post_parse(client, channel["webhook_url"], form, files={}).json()

    work()
    [message] = read_conversation(client, tenant, answer["conversation_id"], answer["position"])["messages"]
    assert message["body"] == "Hi there, my order is late\n"
    assert message["attachments"] == []


def test_a_duplicate_message_id_is_deduplicated(client, db_url):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    first = post_parse(client, channel["webhook_url"], inbound_parse())
    again = post_parse(client, channel["webhook_url"], inbound_parse(text="retried", html="<p>retried</p>"))

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "position": again.json()["position"], "deduplicated": True}
    assert count_events(db_url, RECEIVED) == 1


def test_a_missing_or_wrong_token_is_refused_and_appends_nothing(client, db_url):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    base = f"/v1/webhooks/{channel['id']}"
    cases = {"missing": base, "mismatched": f"{base}?token=whsec_wrong", "malformed": f"{base}?token=a&token=b"}

    for reason, url in cases.items():
        response = post_parse(client, url, inbound_parse())
        assert response.status_code == 401, response.text
        assert response.json()["error_code"] == "invalid_signature"
        assert response.json()["details"] == {"reason": reason, "credential": "token"}
    assert count_events(db_url, RECEIVED) == 0


def test_a_rotated_secret_gives_a_new_url_and_the_old_token_stops_working(client, db_url):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    rotated = client.post(f"/v1/channels/{channel['id']}/rotate-secret", json={}, headers=tenant.auth).json()

    assert post_parse(client, channel["webhook_url"], inbound_parse()).status_code == 401
    assert rotated["webhook_url"].endswith(f"?token={rotated['webhook_secret']}")
    assert post_parse(client, rotated["webhook_url"], inbound_parse()).status_code == 201


def test_bad_inbound_parse_posts_are_refused_and_append_nothing(client, db_url):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    url = path_of(channel["webhook_url"])
    no_message_id = post_parse(client, url, inbound_parse(message_id=None))
    elsewhere = {"to": "someone@else.test", "envelope": orjson.dumps({"to": ["someone@else.test"]}).decode()}
    not_ours = post_parse(client, url, inbound_parse(**elsewhere))
    as_json = client.post(url, json=inbound_parse())
    unfinished = b"--b\r\nContent-Disposition: form-data; name=from\r\n\r\nx"
    truncated = client.post(url, content=unfinished, headers={"Content-Type": "multipart/form-data; boundary=b"})

    assert no_message_id.status_code == 422, no_message_id.text
    assert no_message_id.json()["details"][0] == {
        "field": "headers",
        "issue": "missing_message_id",
        "message": "headers has no Message-ID to deduplicate on",
    }
    assert not_ours.status_code == 422
    assert not_ours.json()["details"][0]["issue"] == "wrong_recipient"
    assert as_json.status_code == 415
    assert truncated.status_code == 400
    assert truncated.json()["error_code"] == "invalid_json"
    assert count_events(db_url, RECEIVED) == 0


def test_the_channel_may_be_one_of_several_recipients(client, work):
    tenant = create_company(client)
    channel = sendgrid_channel(client, tenant)
    form = inbound_parse(
        to=f"Sales <sales@acme.test>, Support <{ADDRESS}>",
        envelope=orjson.dumps({"to": ["sales@acme.test", ADDRESS]}).decode(),
    )

    assert post_parse(client, channel["webhook_url"], form).status_code == 201
