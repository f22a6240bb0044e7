"""Companies, users and channels."""

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from api.dependencies import Caller, committed, json_body, operator, runtime_of
from api.models import RequestBody

router = APIRouter(prefix="/v1", tags=["tenants"])


class NewCompany(RequestBody):
    name: str = Field(min_length=1, max_length=200)


class NewUser(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "agent", "auditor"]


class NewChannel(RequestBody):
    kind: str
    address: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="twilio: the account's auth token"
    )


@router.post("/companies", status_code=201, dependencies=[Depends(operator), Depends(json_body)])
def create_company(body: NewCompany, request: Request) -> dict:
    runtime = runtime_of(request)
    created = runtime.ledger.create_company(body.name)
    company = created.company
    return {
        "id": str(company.id),
        "name": company.name,
        "api_key": created.admin_key,
        "admin_user_id": company.admin_user_id,
        "bot_user_id": company.bot_user_id,
        "position": committed(runtime, created.position),
    }


@router.post("/users", status_code=201, dependencies=[Depends(json_body)])
def create_user(body: NewUser, request: Request, caller: Caller) -> dict:
    runtime = runtime_of(request)
    user, api_key, position = runtime.ledger.create_user(caller, body.name, body.role)
    return {
        "id": str(user.id),
        "name": user.name,
        "role": user.role,
        "api_key": api_key,
        "position": committed(runtime, position),
    }


@router.get("/users")
def list_users(request: Request, caller: Caller) -> dict:
    users = runtime_of(request).ledger.list_users(caller)
    return {"items": [{"id": str(user.id), "name": user.name, "role": user.role} for user in users]}


@router.post("/channels", status_code=201, dependencies=[Depends(json_body)])
def create_channel(body: NewChannel, request: Request, caller: Caller) -> dict:
    runtime = runtime_of(request)
    channel, secret, position = runtime.ledger.create_channel(
        caller, body.kind, body.address, body.name, body.webhook_secret
    )
    base_url = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    return {
        "id": str(channel.id),
        "kind": channel.kind,
        "address": channel.address,
        "name": channel.name,
        "webhook_url": f"{base_url}/v1/webhooks/{channel.id}",
        "webhook_secret": secret,
        "position": committed(runtime, position),
    }
