"""KBMS's dialect: its Intercom importer appends exactly what the intercom channel's webhook appends, and its
internal reads answer from the same read models."""

import orjson
import psycopg

from tests.support import create_company
from tests.test_intercom import CONVERSATION, envelope, intercom_channel, post_intercom, with_part

IMPORT = "/integrations/intercom/conversations"
NEW_PART = {
    "type": "conversation_part",
    "id": "7100",
    "part_type": "comment",
    "body": "<p>Any news?</p>",
    "created_at": 1763809000,
    "author": CONVERSATION["conversation_message"]["author"],
    "attachments": [],
}


def stream_of(db_url: str, conversation_id: str) -> list[tuple[str, str]]:
    """The conversation's events: (type, actor kind), in order."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select topic, state from ledger_events where originator_id = %s order by originator_version",
            [conversation_id],
        ).fetchall()
    return [(topic.rsplit(".", 1)[-1], orjson_actor(state)) for topic, state in rows]


def orjson_actor(state: bytes) -> str:
    return orjson.loads(state)["actor"].split(":", 1)[0]


def test_the_importer_appends_each_message_once_and_answers_in_kbms_shapes(client, db_url, work):
    tenant = create_company(client)
    channel = intercom_channel(client, tenant)

    first = client.post(IMPORT, json=CONVERSATION, headers=tenant.auth)
    assert first.status_code == 201, first.text
    imported = first.json()
    assert imported["intercom_conversation_id"] == CONVERSATION["id"] and imported["channel_id"] == channel.id
    assert imported["deduplicated"] is False and imported["imported"] == len(imported["message_ids"]) >= 2

    again = client.post(IMPORT, json=envelope(CONVERSATION), headers=tenant.auth)
    assert again.status_code == 200 and again.json()["deduplicated"] is True
    assert again.json()["message_ids"] == imported["message_ids"]

    longer = client.post(IMPORT, json=with_part(CONVERSATION, NEW_PART), headers=tenant.auth)
    assert longer.status_code == 201 and longer.json()["imported"] == 1
    assert longer.json()["message_ids"][:-1] == imported["message_ids"]

    position = longer.json()["position"]
    work()
    listed = client.get("/internal/conversations", params={"min_position": position}, headers=tenant.auth).json()
    [conversation] = listed["conversations"]
    assert conversation["id"] == imported["conversation_id"] and conversation["number"] == 1
    detail = client.get(f"/internal/conversations/{conversation['id']}", headers=tenant.auth).json()
    assert [message["id"] for message in detail["messages"]] == longer.json()["message_ids"]
    assert {message["direction"] for message in detail["messages"]} == {"inbound", "outbound"}
    assert detail["messages"][-1]["body"] == "<p>Any news?</p>"


def test_the_importer_appends_the_events_the_webhook_appends(client, db_url):
    through_kbms, through_webhook = create_company(client), create_company(client)
    intercom_channel(client, through_kbms)
    channel = intercom_channel(client, through_webhook)
    kbms = client.post(IMPORT, json=CONVERSATION, headers=through_kbms.auth).json()
    webhook = post_intercom(client, channel, CONVERSATION).json()
    kbms_stream = stream_of(db_url, kbms["conversation_id"])
    webhook_stream = stream_of(db_url, webhook["conversation_id"])
    assert [kind for kind, _ in kbms_stream] == [kind for kind, _ in webhook_stream]
    assert {actor for _, actor in kbms_stream} == {"user"} and {actor for _, actor in webhook_stream} == {"provider"}


def test_the_importer_refuses_a_company_without_an_intercom_channel_or_a_bad_document(client, db_url):
    tenant = create_company(client)
    refused = client.post(IMPORT, json=CONVERSATION, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["details"][0]["field"] == "channel"
    intercom_channel(client, tenant)
    broken = client.post(IMPORT, json={"type": "conversation", "id": "1"}, headers=tenant.auth)
    assert broken.status_code == 422 and broken.json()["error_code"] == "validation_error"
    assert client.post(IMPORT, json=CONVERSATION).status_code == 401
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from ledger_events where topic like 'Conversation.%'").fetchone()[0] == 0
