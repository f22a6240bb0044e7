"""Demo mode: the demo company, keyless dialect calls from loopback only, the seeds' placeholder ids, and
`ledger up --demo` from an empty data dir."""

import asyncio
import json

import httpx
import pytest

from api.app import create_app
from api.demo import demo_file, ensure_demo_company
from api.embedded import free_port
from mock_providers.inbound import RELAY_HEADER
from tests.conftest import make_settings
from tests.support import poll
from tests.test_dialects import HATCH_EXAMPLES, check_hatch_examples, post_hatch_examples
from tests.test_ledger_up import LedgerUp, processes_of


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    return make_settings(db_url, redis_url, tmp_path, demo=True)


@pytest.fixture
def demo(runtime, settings) -> dict:
    created, _ = ensure_demo_company(runtime.ledger, settings.data_dir)
    return created


def admin_auth(demo: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo['admin_key']}"}


def test_the_demo_company_is_created_once(runtime, settings, demo, client):
    assert json.loads(demo_file(settings.data_dir).read_text()) == demo
    assert set(demo) == {"company_id", "admin_key", "admin_user_id", "bot_user_id", "channels"}
    assert set(demo["channels"]) == {"sms", "email", "whatsapp", "slack", "intercom"}
    again, created = ensure_demo_company(runtime.ledger, settings.data_dir)
    assert (again, created) == (demo, False)
    channels = client.get("/v1/channels", headers=admin_auth(demo)).json()["items"]
    assert {(c["kind"], c["address"]) for c in channels} >= {("sms", "+12016661234"), ("email", "user@usehatchapp.com")}
    assert {c["id"] for c in channels} == set(demo["channels"].values())


def test_hatch_examples_as_written_without_a_key_from_loopback(client, demo, work):
    check_hatch_examples(client, {}, work)


def test_keyless_calls_only_from_loopback_and_only_on_dialect_routes(runtime, demo):
    app = create_app(runtime)
    path, payload = HATCH_EXAMPLES[3]

    async def post_from(host: str, headers: dict | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
            return await http.post(path, json=payload, headers=headers)

    # the mock providers' POST /_inbound relays from loopback whatever anyone who reaches the mock sends
    relayed = asyncio.run(post_from("127.0.0.1", {RELAY_HEADER: "1"}))
    assert relayed.status_code == 401 and relayed.json()["error_code"] == "unauthorized"
    refused = asyncio.run(post_from("203.0.113.7"))
    assert refused.status_code == 401 and refused.json()["error_code"] == "unauthorized"
    assert asyncio.run(post_from("10.0.0.1")).status_code == 401
    assert asyncio.run(post_from("127.0.0.1")).status_code == 201
    assert asyncio.run(post_from("::1")).status_code == 200  # the same message again

    async def get_v1() -> int:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
            return (await http.get("/v1/conversations")).status_code

    assert asyncio.run(get_v1()) == 401  # /v1 always needs a key


def test_without_demo_mode_a_key_is_needed(db_url, redis_url, tmp_path):
    from api.runtime import build_runtime

    runtime = build_runtime(make_settings(db_url, redis_url, tmp_path))
    try:
        ensure_demo_company(runtime.ledger, tmp_path)  # a demo.json alone opens nothing
        transport = httpx.ASGITransport(app=create_app(runtime), client=("127.0.0.1", 40000))

        async def post() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
                return await http.post(HATCH_EXAMPLES[3][0], json=HATCH_EXAMPLES[3][1])

        assert asyncio.run(post()).status_code == 401
    finally:
        runtime.close()


def test_sailer_examples_with_the_demo_placeholders(client, demo, work):
    inbound = {
        "company_id": "company-123",
        "channel_id": "whatsapp-1",
        "from": "+5511999999999",
        "text": "Hi, I need help with my order",
        "channel_message_id": "wamid-1",
    }
    received = client.post("/webhooks/inbound", json=inbound)
    assert received.status_code == 201, received.text
    conversation_id = received.json()["conversation_id"]
    replied = client.post(f"/conversations/{conversation_id}/messages", json={"author_id": "agent-1", "text": "Hi!"})
    assert replied.status_code == 201, replied.text
    assert replied.json()["author_id"] == demo["admin_user_id"]
    moved = client.post(f"/conversations/{conversation_id}/transfer", json={"new_owner_id": "agent-1"})
    assert moved.status_code == 200 and moved.json()["owner_id"] == demo["admin_user_id"]
    work()
    listed = client.get(
        "/companies/company-123/conversations",
        params={"owner_id": "agent-1", "channel_id": "whatsapp-1", "min_position": moved.json()["position"]},
    )
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["conversations"]
    assert (summary["id"], summary["company_id"]) == (conversation_id, demo["company_id"])
    assert summary["channel_id"] == demo["channels"]["whatsapp"]
    read = client.get(f"/conversations/{conversation_id}").json()
    assert [m["text"] for m in read["messages"]] == ["Hi, I need help with my order", "Hi!"]
    contact_id = read["contact_id"]
    assert client.post(f"/contacts/{contact_id}/custom-fields", json={"order": "A-1"}).json()["custom_fields"] == {
        "order": "A-1"
    }
    company = client.post("/companies", json={"name": "Another"})  # no operator token: loopback, demo mode
    assert company.status_code == 201, company.text


def test_ledger_up_demo_creates_the_company_once_and_serves_hatch_keyless(server_dir, db_url, redis_url):
    data_dir = server_dir / "data"
    mock_url = f"http://127.0.0.1:{(mock_port := free_port())}"
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "LEDGER_MOCK_PROVIDERS_PORT": str(mock_port)}
    up = LedgerUp(data_dir, "--demo", **env)
    try:
        demo = json.loads((data_dir / "demo.json").read_text())
        assert f"demo admin key: {demo['admin_key']}\n" in up.output
        assert any(line.startswith(f"demo company: {demo['company_id']} (created") for line in up.output)
        assert f"mock providers: {mock_url}\n" in up.output  # --demo implies --mock-providers
        with httpx.Client(base_url=up.url, timeout=30) as client:
            answers = post_hatch_examples(client, {})
            listed = poll(
                lambda: conversations_at(client, max(answer["position"] for answer in answers)),
                timeout=30,
                what="the conversations",
            )
            assert sorted(item["id"] for item in listed) == [1, 2]
            assert client.get("/v1/conversations").status_code == 401
        sent = poll(lambda: delivered_to_mock(mock_url), timeout=30, what="the sends")
        assert sorted(sent) == sorted(answer["id"] for answer in answers[:3])
    finally:
        up.stop()
    assert up.process.returncode == 0

    again = LedgerUp(data_dir, "--demo", **env)
    try:
        assert json.loads((data_dir / "demo.json").read_text()) == demo
        assert any(line.startswith(f"demo company: {demo['company_id']} (reused") for line in again.output)
        with httpx.Client(base_url=again.url, timeout=30) as client:
            repeat = client.post(HATCH_EXAMPLES[3][0], json=HATCH_EXAMPLES[3][1])
            assert repeat.status_code == 200 and repeat.json()["id"] == answers[3]["id"]
            users = client.get("/v1/users", headers={"Authorization": f"Bearer {demo['admin_key']}"})
            assert users.status_code == 200
    finally:
        again.stop()
    assert processes_of(data_dir) == []


def conversations_at(client: httpx.Client, position: int) -> list[dict] | None:
    response = client.get("/api/conversations", params={"min_position": position})
    return response.json()["conversations"] if response.status_code == 200 else None


def delivered_to_mock(mock_url: str) -> list[str] | None:
    keys = [entry["idempotency_key"] for entry in httpx.get(f"{mock_url}/_requests").json() if entry["accepted"]]
    return keys if len(keys) >= 3 else None
