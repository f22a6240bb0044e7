"""The console over plain HTTP: sign-in and its CSRF token, forms refused without the session's token or
from another origin, HTML errors for bad input, and nothing of it in the OpenAPI document."""

import re
import time

from tests.support import create_channel, create_company, post_signed, sms_payload
from tests.test_inbox import create_user, ok, project

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


def test_only_web_urls_become_links_and_pages_carry_the_security_headers(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    attachments = ["javascript:alert(1)", "https://example.com/a.jpg"]
    payload = sms_payload(channel, type="mms", attachments=attachments)
    conversation_id = ok(post_signed(client, channel, payload))["conversation_id"]
    project(runtime)
    signed_in(client, tenant.api_key)
    page = client.get(f"/console/conversations/{conversation_id}")
    assert page.status_code == 200
    assert '<a href="https://example.com/a.jpg"' in page.text
    assert 'href="javascript:' not in page.text and "javascript:alert(1)" in page.text  # shown, as text
    for path in (f"/console/conversations/{conversation_id}", "/console/login", "/console/nowhere"):
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'"), path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store", path


def test_a_far_future_time_and_an_empty_idempotency_key_answer_422_pages(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = ok(post_signed(client, channel, sms_payload(channel)))["conversation_id"]
    project(runtime)
    csrf = signed_in(client, tenant.api_key)
    for at in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday"):
        answer = client.get(f"/console/audit/{conversation_id}", params={"at": at})
        assert answer.status_code == 422, (at, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    assert client.get(f"/console/audit/{conversation_id}", params={"at": "9999-12-31T23:59:59Z"}).status_code == 200

    head = runtime.ledger.head_position()
    reply = f"/console/conversations/{conversation_id}/reply"
    for data in ({"body": "Twice?", "idempotency_key": ""}, {"body": "Twice?"}, {"idempotency_key": "k-1"}):
        refused = client.post(reply, data={"csrf": csrf, **data})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html"), data
    assert runtime.ledger.head_position() == head  # nothing appended


def test_every_method_gets_an_html_answer_and_the_trailing_slash_redirects(client):
    tenant = create_company(client)
    signed_in(client, tenant.api_key)
    slash = client.get("/console/")
    assert slash.status_code in (301, 307, 308) and slash.headers["location"] == "/console"
    assert client.get("/console/", follow_redirects=True).url.path == "/console/inbox"
    for method, path in (("POST", "/console/nowhere"), ("DELETE", "/console/inbox"), ("PUT", "/console/login")):
        answer = client.request(method, path)
        assert answer.status_code in (404, 405), (method, path)
        assert answer.headers["content-type"].startswith("text/html"), (method, path, answer.text)


def test_inbox_streams_refuse_auditors_and_end_when_the_key_is_revoked(client):
    tenant = create_company(client)
    auditor = create_user(client, tenant, role="auditor", name="Audrey")
    agent = create_user(client, tenant, name="Ann")
    signed_in(client, auditor.api_key)
    for queue in ("inbox", "unassigned"):
        refused = client.get(f"/console/{queue}/stream")
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html"), queue

    client.cookies.clear()
    csrf = signed_in(client, agent.api_key)
    with client.stream("GET", "/console/inbox/stream", timeout=10) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines).startswith(":")  # the stream started
        ok(client.delete(f"/v1/users/{agent.admin_user_id}/keys", headers=tenant.auth))
        deadline = time.monotonic() + 10
        for _ in lines:  # ends at the next heartbeat (0.5 s in these tests)
            assert time.monotonic() < deadline, "the stream outlived its revoked key"
    assert client.get("/console/inbox").headers["location"] == "/console/login"
    out = client.post("/console/logout", data={"csrf": csrf})  # a revoked key's session: the cookie goes too
    assert out.status_code == 303 and 'ledger_console=""' in out.headers["set-cookie"]


def test_transfers_go_only_to_admins_and_agents_and_the_crumb_leads_home(client, runtime):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    auditor = create_user(client, tenant, role="auditor", name="Audrey")
    create_user(client, tenant, name="Ann")
    conversation_id = ok(post_signed(client, channel, sms_payload(channel)))["conversation_id"]
    project(runtime)
    signed_in(client, tenant.api_key)
    menu = re.search(
        r'<select id="transfer-to".*?</select>', client.get(f"/console/conversations/{conversation_id}").text, re.S
    )
    assert "Ann (agent)" in menu.group(0) and "Audrey" not in menu.group(0) and "(bot)" not in menu.group(0)
    client.cookies.clear()
    signed_in(client, auditor.api_key)
    page = client.get(f"/console/conversations/{conversation_id}").text
    assert '<a href="/console/audit">← Audit</a>' in page and 'href="/console/inbox"' not in page
