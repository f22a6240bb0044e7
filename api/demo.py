"""`ledger up --demo`: a demo company, created once through the normal commands, whose admin the dialect
routes answer as when they are called without a key from the loopback interface.

`python -m api.demo` ensures the company and writes `<data dir>/demo.json`; `ledger up --demo` runs it
after migrating and before starting the API, which then reads the file (LEDGER_DEMO=1)."""

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from api.dependencies import bearer, runtime_of
from ledger.application import Ledger
from ledger.credentials import constant_time_equal
from ledger.errors import Unauthorized
from ledger.tenancy import Company
from ledger.tenants import Principal
from mock_providers.inbound import RELAY_HEADER

DEMO_FILE = "demo.json"
DEMO_NAME = "Demo"
# kind, address, credentials: the addresses the seeds' examples use; every provider URL points at the mock.
DEMO_CHANNELS = (
    ("sms", "+12016661234", None),
    ("email", "user@usehatchapp.com", None),
    ("whatsapp", "+12016660000", None),
    ("slack", "#demo", {"webhook_url": "https://hooks.slack.com/services/T0DEMO/B0DEMO/demo"}),
    ("intercom", "demo-workspace", None),  # KBMS's importer receives on it
)


def demo_file(data_dir: Path) -> Path:
    return data_dir / DEMO_FILE


def ensure_demo_company(ledger: Ledger, data_dir: Path) -> tuple[dict, bool]:
    """The demo company of demo.json if the log still holds it, else a new one (then written to
    demo.json); True when it was created now."""
    path = demo_file(data_dir)
    if path.exists():
        demo = json.loads(path.read_text())
        if ledger.find(Company, UUID(demo["company_id"])) is not None:
            return demo, False
    demo = create_demo_company(ledger)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # it holds the admin key
    path.write_text(json.dumps(demo, indent=2) + "\n")
    return demo, True


def create_demo_company(ledger: Ledger) -> dict:
    created = ledger.create_company(DEMO_NAME)
    company = created.company
    admin = Principal(company_id=company.company_id, user_id=company.admin_user_id, role="admin")
    channels = {}
    for kind, address, credentials in DEMO_CHANNELS:
        channel, _secret, _position = ledger.create_channel(admin, kind, address, None, None, credentials)
        channels[kind] = str(channel.id)
    return {
        "company_id": company.company_id,
        "admin_key": created.admin_key,
        "admin_user_id": company.admin_user_id,
        "bot_user_id": company.bot_user_id,
        "channels": channels,
    }


# -- ledger up --demo ---------------------------------------------------------------------------


def configure_up(args, env: dict[str, str]) -> None:
    """--demo implies --mock-providers, and tells the children they serve the demo."""
    if getattr(args, "demo", False):
        args.mock_providers = True
        env["LEDGER_DEMO"] = "1"


def prepare_up(args, env: dict[str, str]) -> None:
    """With --demo, ensures the demo company (in a child process, as migrating is) and prints its key."""
    if getattr(args, "demo", False):
        subprocess.run([sys.executable, "-m", "api.demo"], env=env, check=True)


def main() -> None:
    from api.runtime import build_runtime
    from api.settings import Settings

    settings = Settings()
    runtime = build_runtime(settings)
    try:
        demo, created = ensure_demo_company(runtime.ledger, settings.data_dir)
    finally:
        runtime.close()
    path = demo_file(settings.data_dir)
    print(f"demo company: {demo['company_id']} ({'created' if created else 'reused'}; {path})", flush=True)
    print(f"demo admin key: {demo['admin_key']}", flush=True)


# -- what the dialect routes depend on -------------------------------------------------------------


def demo_of(request: Request) -> dict | None:
    """demo.json, in demo mode (read once per app)."""
    runtime = runtime_of(request)
    if not runtime.settings.demo:
        return None
    demo = getattr(request.app.state, "demo", None)
    if demo is None:
        path = demo_file(runtime.settings.data_dir)
        if not path.exists():
            return None
        demo = request.app.state.demo = json.loads(path.read_text())
    return demo


def from_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def keyless_demo(request: Request) -> dict | None:
    """demo.json when this request may act as the demo's admin without a key: from the loopback interface,
    and not relayed by the mock providers' POST /_inbound (which anyone who reaches the mock may call)."""
    demo = demo_of(request)
    relayed = RELAY_HEADER.lower() in request.headers
    return demo if demo is not None and from_loopback(request) and not relayed else None


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
NO_KEY = "send Authorization: Bearer <key> (without one, only loopback calls in demo mode are let in)"


def dialect_principal(request: Request, credentials: Credentials) -> Principal:
    """The caller of a dialect route: the key's user, else (demo mode, loopback only) the demo's admin."""
    if credentials is not None:
        return runtime_of(request).ledger.authenticate(credentials.credentials)
    demo = keyless_demo(request)
    if demo is None:
        raise Unauthorized(NO_KEY)
    return Principal(company_id=demo["company_id"], user_id=demo["admin_user_id"], role="admin")


DialectCaller = Annotated[Principal, Depends(dialect_principal)]


def operator_or_demo(request: Request, credentials: Credentials) -> None:
    """The operator token, or (demo mode, loopback only) no key at all."""
    if credentials is None:
        if keyless_demo(request) is None:
            raise Unauthorized(NO_KEY)
        return
    if not constant_time_equal(credentials.credentials, runtime_of(request).admin_token):
        raise Unauthorized("this needs the operator token")


def placeholder(request: Request, value: str) -> str:
    """In demo mode, the demo's id for a placeholder the seeds' examples use; else the value itself."""
    demo = demo_of(request)
    if demo is None:
        return value
    placeholders = {
        "company-123": demo["company_id"],
        "whatsapp-1": demo["channels"]["whatsapp"],
        "agent-1": demo["admin_user_id"],
    }
    return placeholders.get(value, value)


if __name__ == "__main__":
    main()
