"""The console in a real browser: an agent's live inbox, reply, delivery status and transfer; an admin's
page; an auditor's verified history, then the broken event highlighted once the log was altered; and the
read-only pages without JavaScript."""

import re

import psycopg
from playwright.sync_api import expect

from tests.console.conftest import DESKTOP, PHONE
from tests.support import create_channel, create_company, post_signed, sms_payload
from tests.test_inbox import create_user, ok, project

HUMAN = "Hello, I want to talk to a human please"


def sign_in(page, base_url, api_key: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Presses Tab until the element matching selector has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def at_phone_width(page, shoot, name: str) -> None:
    viewport = page.viewport_size
    page.set_viewport_size(PHONE)
    shoot(page, name)
    page.set_viewport_size(viewport)


def test_an_agent_sees_a_conversation_arrive_live_replies_and_transfers_it(
    client, runtime, mock_providers, sending, page, shoot
):
    base = str(client.base_url).rstrip("/")
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    ann = create_user(client, tenant, name="Ann")
    bob = create_user(client, tenant, name="Bob")  # not available: no handoff goes to him
    ok(client.put(f"/v1/users/{ann.admin_user_id}/availability", json={"available": True}, headers=tenant.auth))

    refused = []  # the Content-Security-Policy's reports: the console needs no inline script or style
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else 0)
    sign_in(page, base, ann.api_key)
    expect(page.get_by_role("heading", name="Your inbox")).to_be_visible()
    expect(page.get_by_text("No open conversations.")).to_be_visible()
    expect(page.locator("#live-status")).to_contain_text("Live")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    # A customer writes and asks for a person: the bot hands the conversation to Ann, live.
    conversation_id = ok(post_signed(client, channel, sms_payload(channel, body=HUMAN)))["conversation_id"]
    row = page.locator(f"tr[data-conversation='{conversation_id}']")
    expect(row).to_be_visible(timeout=20_000)
    assert page.evaluate("window.sameDocument") is True, "the inbox reloaded instead of updating"
    expect(page.locator("[data-open-count]")).to_have_text("1")
    expect(row.locator("[data-unread]")).to_have_text("1")  # the customer's message
    expect(row.locator("time[data-waiting]")).to_be_visible()
    shoot(page, "inbox")
    at_phone_width(page, shoot, "inbox-phone")

    # Open it with the keyboard.
    tab_to(page, f"tr[data-conversation='{conversation_id}'] a")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"Conversation #\d+"))).to_be_visible()
    expect(page.locator("li.message.inbound").first).to_contain_text(HUMAN)
    expect(page.get_by_role("heading", name="Contact", exact=True)).to_be_visible()

    # Reply from the keyboard: Tab to the reply box, type, Tab to Send, Enter.
    tab_to(page, "#reply-body")
    page.keyboard.type("Hi, Ann here. How can I help?")
    tab_to(page, ".compose button[type=submit]")
    page.keyboard.press("Enter")
    mine = page.locator("li.message.outbound").filter(has_text="Ann here")
    expect(mine).to_have_count(1)
    expect(mine.locator("[data-message-status]")).to_have_text("sent", timeout=20_000)  # without a reload
    assert [request["body"] for request in mock_providers.requests()][-1] == "Hi, Ann here. How can I help?"
    shoot(page, "conversation")
    at_phone_width(page, shoot, "conversation-phone")

    # Transfer it to Bob: it leaves Ann's inbox.
    page.get_by_label("Transfer to").select_option(label="Bob (agent)")
    page.get_by_label("Reason (optional)").fill("billing question")
    page.get_by_role("button", name="Transfer").click()
    expect(page.get_by_role("heading", name="Your inbox")).to_be_visible()
    expect(page.locator(f"tr[data-conversation='{conversation_id}']")).to_have_count(0)
    answer = ok(client.get(f"/v1/conversations/{conversation_id}", headers=tenant.auth))
    assert answer["owner_id"] == bob.admin_user_id

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{base}/console/inbox")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert refused == []


def test_an_admin_sees_users_channels_the_unassigned_queue_and_projection_lag(client, runtime, page, shoot):
    base = str(client.base_url).rstrip("/")
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    create_user(client, tenant, name="Ann")
    conversation_id = ok(post_signed(client, channel, sms_payload(channel)))["conversation_id"]
    ok(client.post(f"/v1/conversations/{conversation_id}/transfer", json={"to_user_id": None}, headers=tenant.auth))
    project(runtime)

    sign_in(page, base, tenant.api_key)
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    expect(page.locator("#users")).to_contain_text("Ann")
    expect(page.locator("#channels")).to_contain_text(f"/v1/webhooks/{channel.id}")
    expect(page.locator("#projections")).to_contain_text("inbox")
    expect(page.get_by_role("link", name=re.compile(r"#\d+ \+18045551234"))).to_be_visible()
    shoot(page, "admin")
    page.set_viewport_size(PHONE)  # the wide tables scroll inside their box, not the page
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)

    # Ann made available from the admin page.
    page.get_by_role("button", name="Set available for Ann").click()
    expect(page.locator("#users tr", has_text="Ann")).to_contain_text("yes")

    page.get_by_role("link", name="Unassigned").click()
    expect(page.get_by_role("heading", name="Unassigned queue")).to_be_visible()
    shoot(page, "unassigned")


def test_an_auditor_sees_the_chain_verified_then_the_altered_event_highlighted(client, runtime, db_url, page, shoot):
    base = str(client.base_url).rstrip("/")
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    auditor = create_user(client, tenant, role="auditor", name="Audrey")
    written = [ok(post_signed(client, channel, sms_payload(channel, body=f"message {n}"))) for n in range(3)]
    conversation_id = written[0]["conversation_id"]
    project(runtime)

    page.goto(f"{base}/console/login")
    shoot(page, "login")
    sign_in(page, base, auditor.api_key)
    expect(page.get_by_role("heading", name="Audit")).to_be_visible()
    shoot(page, "audit")
    page.locator(f"a[href='/console/audit/{conversation_id}']").click()
    expect(page.locator("#verdict")).to_contain_text("verified")
    expect(page.locator("#history tbody tr")).to_have_count(4)
    expect(page.locator("tr.broken")).to_have_count(0)
    shoot(page, "history")

    # Step through the state: version 2 holds the first message, then on to version 3.
    page.locator("#event-2").get_by_role("link", name="at v2").click()
    expect(page.locator("[data-state-version]")).to_have_text("2")
    expect(page.locator("[data-state-messages]")).to_have_text("1")
    page.get_by_role("link", name="v3 →").click()
    expect(page.locator("[data-state-messages]")).to_have_text("2")
    shoot(page, "history-state")

    with psycopg.connect(db_url, autocommit=True) as conn:
        altered = conn.execute(
            "update ledger_events set state = overlay(state placing '\\x58'::bytea from 20 for 1)"
            " where originator_id = %s and originator_version = 3",
            [conversation_id],
        )
        assert altered.rowcount == 1
    page.goto(f"{base}/console/audit/{conversation_id}")
    expect(page.locator("#verdict")).to_contain_text("broken")
    expect(page.locator("#verdict")).to_contain_text("version 3")
    broken = page.locator("tr.broken")
    expect(broken).to_have_count(1)
    expect(broken).to_have_attribute("data-version", "3")
    shoot(page, "history-broken")


def test_the_read_only_pages_read_without_javascript(client, runtime, browser):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    conversation_id = ok(post_signed(client, channel, sms_payload(channel, body="No script here")))["conversation_id"]
    project(runtime)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        base = str(client.base_url).rstrip("/")
        sign_in(page, base, tenant.api_key)
        expect(page.get_by_role("heading", name="Your inbox")).to_be_visible()
        page.goto(f"{base}/console/conversations/{conversation_id}")
        expect(page.locator("li.message.inbound")).to_contain_text("No script here")
        page.goto(f"{base}/console/audit/{conversation_id}")
        expect(page.locator("#verdict")).to_contain_text("verified")
        page.goto(f"{base}/console/unassigned")
        expect(page.get_by_role("heading", name="Unassigned queue")).to_be_visible()
    finally:
        context.close()


def test_an_open_inbox_goes_to_the_sign_in_page_once_its_key_is_revoked(client, runtime, page):
    base = str(client.base_url).rstrip("/")
    tenant = create_company(client)
    ann = create_user(client, tenant, name="Ann")
    sign_in(page, base, ann.api_key)
    expect(page.locator("#live-status")).to_contain_text("Live")
    ok(client.delete(f"/v1/users/{ann.admin_user_id}/keys", headers=tenant.auth))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=20_000)
