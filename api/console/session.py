"""Who is signed in to the console: an HttpOnly, SameSite=Strict cookie holding the API key, checked
against the log on every request like a bearer key, and a CSRF token bound to it for every form.

The CSRF token is an HMAC of the key under the deployment's secret key: each form carries it, and a
POST whose token does not match the session's cookie is refused. A cross-site page can neither read it
nor send the cookie (SameSite=Strict); the Origin check refuses what a browser marks as cross-origin."""

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.console.views import render
from api.dependencies import runtime_of
from api.errors import STATUS_AND_CODE
from api.runtime import secret_key
from ledger.errors import Forbidden, LedgerError, Unauthorized
from ledger.tenants import Principal

COOKIE = "ledger_console"
LOGIN_COOKIE = "ledger_console_login"  # a double-submit token for the sign-in form, before any session
PATH = "/console"
HOMES = {"agent": f"{PATH}/inbox", "admin": f"{PATH}/inbox", "auditor": f"{PATH}/audit"}


class SignedOut(Exception):
    """No session, or its key is no longer valid: the console answers with the sign-in page."""


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def home(self) -> str:
        return HOMES[self.role]


def csrf_of(request: Request, api_key: str) -> str:
    secret = secret_key(runtime_of(request).settings).encode()
    return hmac.new(secret, b"ledger-console-csrf\0" + api_key.encode(), sha256).hexdigest()


def signed_in(request: Request, api_key: str) -> Session:
    """The session of this key; Unauthorized for an unknown or revoked one, Forbidden for the bot."""
    principal = runtime_of(request).ledger.authenticate(api_key)
    if principal.role not in HOMES:
        raise Forbidden("the console is for people: sign in with an admin's, an agent's or an auditor's key")
    return Session(principal, csrf_of(request, api_key))


def session(request: Request) -> Session:
    api_key = request.cookies.get(COOKIE)
    if not api_key:
        raise SignedOut()
    try:
        return signed_in(request, api_key)
    except (Unauthorized, Forbidden):
        raise SignedOut() from None


def same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("this form was sent from another site")


def posted(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Session:
    """The session of a console POST, once its form's CSRF token matched."""
    same_origin(request)
    current = session(request)
    if not hmac.compare_digest(csrf.encode(), current.csrf.encode()):
        raise Forbidden("this form's CSRF token does not match your session: reload the page and try again")
    return current


SignedIn = Annotated[Session, Depends(session)]
Posted = Annotated[Session, Depends(posted)]


def set_session(response: Response, request: Request, api_key: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, api_key, path=PATH, httponly=True, samesite="strict", secure=secure)
    response.delete_cookie(LOGIN_COOKIE, path=PATH)


def login_token(request: Request) -> str:
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)


def set_login_token(response: Response, request: Request, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(LOGIN_COOKIE, token, path=PATH, httponly=True, samesite="strict", secure=secure)


def login_token_matches(request: Request, token: str) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"title": title, "message": message}, status_code)


class ConsoleRoute(APIRoute):
    """Console routes answer HTML: the sign-in page when signed out, an error page for a domain error
    or bad input (the /v1 routes answer these as JSON)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignedOut:
                return RedirectResponse(f"{PATH}/login", status_code=303)
            except RequestValidationError as error:
                issues = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
                return error_page(request, 422, "That request was not valid", issues)
            except LedgerError as error:
                status_code, code = STATUS_AND_CODE.get(type(error), (400, "bad_request"))
                return error_page(request, status_code, code.replace("_", " ").capitalize(), error.message)

        return guarded


def console_router() -> APIRouter:
    """A router of console pages: under /console, HTML, and left out of the OpenAPI document."""
    return APIRouter(
        prefix=PATH, include_in_schema=False, route_class=ConsoleRoute, default_response_class=HTMLResponse
    )
