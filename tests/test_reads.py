"""Conversation lists: newest activity first, cursor paging, filters; contacts."""

from tests.support import create_channel, create_company, post_signed, sms_payload


def test_conversations_page_newest_activity_first_with_filters(client, work):
    tenant = create_company(client)
    sms = create_channel(client, tenant, address="+18045550100")
    other = create_channel(client, tenant, address="+18045550101")
    senders = [f"+1804555{index:04d}" for index in range(5)]
    written = {sender: post_signed(client, sms, sms_payload(sms, sender=sender)).json() for sender in senders}
    on_other = post_signed(client, other, sms_payload(other, sender=senders[0])).json()
    latest = post_signed(client, sms, sms_payload(sms, sender=senders[0], body="I am back")).json()
    work()

    def page(**params):
        response = client.get("/v1/conversations", params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        return response.json()

    first = page(limit=2, min_position=latest["position"])
    items, cursor = list(first["items"]), first["next_cursor"]
    while cursor:
        next_page = page(limit=2, cursor=cursor)
        assert len(next_page["items"]) <= 2
        items += next_page["items"]
        cursor = next_page["next_cursor"]
    expected = [
        written[senders[0]]["conversation_id"],
        on_other["conversation_id"],
        *[written[sender]["conversation_id"] for sender in reversed(senders[1:])],
    ]
    assert [item["id"] for item in items] == expected
    assert items[0]["last_message_preview"] == "I am back" and items[0]["message_count"] == 2

    assert [item["id"] for item in page(channel_id=other.id)["items"]] == [on_other["conversation_id"]]
    same_contact = page(contact_id=written[senders[0]]["contact_id"])["items"]
    assert {item["id"] for item in same_contact} == {
        written[senders[0]]["conversation_id"],
        on_other["conversation_id"],
    }
    assert len(page(owner_id=tenant.bot_user_id, status="open")["items"]) == 6
    assert page(owner_id=tenant.admin_user_id)["items"] == []
    assert page(status="closed")["items"] == []


def test_contact_of_a_phone_sender(client, work):
    tenant = create_company(client)
    channel = create_channel(client, tenant)
    written = post_signed(client, channel, sms_payload(channel, sender="(804) 555-7788")).json()
    work()
    response = client.get(
        f"/v1/contacts/{written['contact_id']}", params={"min_position": written["position"]}, headers=tenant.auth
    )
    assert response.status_code == 200
    assert int(response.headers["X-Ledger-Position"]) >= written["position"]
    contact = response.json()
    assert contact["id"] == written["contact_id"]
    assert contact["addresses"] == ["+18045557788"] and contact["phone"] == "+18045557788"
    assert contact["email"] is None and contact["name"] is None and contact["custom_fields"] == {}
    assert contact["provenance"]["phone"]["method"] == "address"


def test_an_added_address_is_projected_on_the_contact(client, runtime, work):
    from uuid import UUID

    tenant = create_company(client)
    channel = create_channel(client, tenant)
    written = post_signed(client, channel, sms_payload(channel, sender="+18045557788")).json()
    contact = runtime.ledger.repository.get(UUID(written["contact_id"]))
    contact.add_address("ann@example.com", "email", actor=f"user:{tenant.admin_user_id}")
    contact.add_address("ann@example.com", "email", actor=f"user:{tenant.admin_user_id}")  # no second event
    position = runtime.ledger.commit(contact)
    work()
    response = client.get(
        f"/v1/contacts/{written['contact_id']}", params={"min_position": position}, headers=tenant.auth
    )
    projected = response.json()
    assert projected["addresses"] == ["+18045557788", "ann@example.com"]
    assert projected["email"] == "ann@example.com" and projected["phone"] == "+18045557788"
