"""The console's templates and the filters they use to show times, waits and delivery statuses."""

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# status: (symbol, words); screen readers read the words, the symbol is decoration
STATUS_ICONS = {
    "queued": ("◷", "queued"),
    "sending": ("◷", "sending"),
    "sent": ("✓", "sent"),
    "delivered": ("✓✓", "delivered"),
    "read": ("✓✓", "read"),
    "failed": ("✕", "failed"),
    "undelivered": ("✕", "undelivered"),
    "received": ("↓", "received"),
}


def as_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def waited(since: datetime | None, now: datetime | None = None) -> str:
    """How long since `since`, coarsely: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if since is None:
        return "not waiting"
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return f"{seconds} s"
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def status_icon(status: str | None) -> tuple[str, str]:
    return STATUS_ICONS.get(status or "", ("•", status or "unknown"))


def short(value: object, length: int = 8) -> str:
    text = "" if value is None else str(value)
    return text[:length]


def as_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()


def web_url(value: object) -> bool:
    """Only an http(s) URL becomes a link: a stored javascript: or data: URL is shown as text."""
    return isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in ("http", "https")


templates.env.tests["web_url"] = web_url
templates.env.filters.update(
    as_time=as_time, iso=iso, waited=waited, status_icon=status_icon, short=short, as_json=as_json
)


# No inline script or style in the console: its one script and one stylesheet come from /console/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Back after sign-out shows nothing private, and a compose form is never reused with an old idempotency key.
    "Cache-Control": "no-store",
}


def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=HEADERS)
