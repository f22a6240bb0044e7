"""The console over plain HTTP: sign-in and its CSRF token, forms refused without the session's token or
from another origin, HTML errors for bad input, and nothing of it in the OpenAPI document."""

import re

from tests.support import create_channel, create_company, post_signed, sms_payload
from tests.test_inbox import ok, project

LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def signed_in(client, api_key: str) -> str:
    """Signs the client in; answers the session's CSRF token, as its pages carry it."""
    token = LOGIN_CSRF.search(client.get("/console/login").text).group(1)
    answer = client.post("/console/login", data={"api_key": api_key, "csrf": token})
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    return LOGIN_CSRF.search(client.get(answer.headers["location"]).text).group(1)


def test_signing_in_needs_the_forms_token_and_a_valid_persons_key(client):
    tenant = create_company(client)
    assert client.get("/console/inbox").headers["location"] == "/console/login"  # signed out
    token = LOGIN_CSRF.search(client.get("/console/login").text).group(1)
    assert client.post("/console/login", data={"api_key": tenant.api_key, "csrf": "forged"}).status_code == 403
    wrong = client.post("/console/login", data={"api_key": "lk_nope", "csrf": token})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    bot_key = ok(client.post(f"/v1/users/{tenant.bot_user_id}/keys", headers=tenant.auth))["api_key"]
    assert client.post("/console/login", data={"api_key": bot_key, "csrf": token}).status_code == 403
    assert signed_in(client, tenant.api_key)


def test_console_forms_need_the_sessions_csrf_token_and_the_same_origin(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = ok(post_signed(client, channel, sms_payload(channel)))["conversation_id"]
    csrf = signed_in(client, tenant.api_key)
    path = f"/console/conversations/{conversation_id}/close"
    head = runtime.ledger.head_position()
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf": "0" * 64}).status_code == 403
    assert client.post(path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"}).status_code == 403
    assert runtime.ledger.head_position() == head  # nothing appended
    closed = client.post(path, data={"csrf": csrf})
    assert closed.status_code == 303 and closed.headers["location"].startswith(
        f"/console/conversations/{conversation_id}"
    )
    project(runtime)
    assert ok(client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth))["status"] == "closed"

    # The same idempotency key twice queues one message.
    reply = f"/console/conversations/{conversation_id}/reply"
    for _ in range(2):
        sent = client.post(reply, data={"csrf": csrf, "body": "Once", "idempotency_key": "compose-1"})
        assert sent.status_code == 303
    project(runtime)
    messages = ok(client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth))["messages"]
    assert [m["body"] for m in messages].count("Once") == 1

    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/console/inbox").headers["location"] == "/console/login"


def test_bad_input_answers_an_html_page_never_a_500(client, runtime):
    tenant = create_company(client)
    auditor_key = ok(client.post("/v1/users", json={"name": "Audrey", "role": "auditor"}, headers=tenant.auth))
    csrf = signed_in(client, tenant.api_key)
    cases = {
        "/console/conversations/not-a-uuid": 404,
        "/console/conversations/00000000-0000-0000-0000-000000000000": 404,
        "/console/inbox?min_position=-1": 422,
        "/console/inbox?min_position=999999999": 422,
        "/console/audit/00000000-0000-0000-0000-000000000000": 404,
        "/console/audit?conversation_id=nope": 404,
        "/console/nowhere": 404,
    }
    for path, status in cases.items():
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), path
    empty = client.post("/console/conversations/00000000-0000-0000-0000-000000000000/reply", data={"csrf": csrf})
    assert empty.status_code == 422 and empty.headers["content-type"].startswith("text/html")
    bad_user = client.post(f"/console/users/{tenant.admin_user_id}/availability", data={"csrf": csrf, "available": "x"})
    assert bad_user.status_code == 422

    client.cookies.clear()
    signed_in(client, auditor_key["api_key"])
    assert client.get("/console/inbox").status_code == 403  # auditors have no inbox
    assert client.get("/console/admin").status_code == 403


def test_the_console_is_not_in_the_openapi_document_and_ships_its_assets(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]
    assert client.get("/console/static/console.css").status_code == 200
    script = client.get("/console/static/console.js")
    assert script.status_code == 200 and "http" not in script.text.replace("text/html", "")  # nothing fetched elsewhere
