"""Companies, users and channels."""

from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import Caller, json_body, operator, parse_id, runtime_of
from api.models import RequestBody
from api.schemas import (
    AUTHENTICATED,
    WITH_BODY,
    ChannelInfoOut,
    ChannelOut,
    ChannelsOut,
    CompanyCreatedOut,
    UserCreatedOut,
    UserOut,
    UsersOut,
    errors,
    request_body,
)
from ledger.channels import channel_kinds

router = APIRouter(prefix="/v1", tags=["tenants"])


class NewCompany(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Acme"}]})

    name: str = Field(min_length=1, max_length=200)


class NewUser(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Ann", "role": "agent"}]})

    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "agent", "auditor"]


class NewChannel(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"kind": "sms", "address": "+18045550100"}]})

    kind: str = Field(json_schema_extra={"enum": sorted(channel_kinds())})  # the ledger checks it
    address: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="twilio: the account's auth token"
    )
    credentials: dict[str, Annotated[str, Field(min_length=1, max_length=2000)]] | None = Field(
        default=None,
        description="twilio: account_sid; sendgrid: api_key; slack: webhook_url; sms/email/whatsapp: api_key"
        " (optional). Stored sealed, never answered back.",
    )


@router.post(
    "/companies",
    status_code=201,
    dependencies=[Depends(operator)],
    responses={**errors(401, 503), **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewCompany]}),
)
def create_company(request: Request, body: Annotated[NewCompany, json_body(NewCompany)]) -> CompanyCreatedOut:
    runtime = runtime_of(request)
    created = runtime.ledger.create_company(body.name)
    company = created.company
    return CompanyCreatedOut(
        id=company.id,
        name=company.name,
        api_key=created.admin_key,
        admin_user_id=company.admin_user_id,
        bot_user_id=company.bot_user_id,
        position=created.position,
    )


@router.post(
    "/users",
    status_code=201,
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewUser]}),
)
def create_user(request: Request, caller: Caller, body: Annotated[NewUser, json_body(NewUser)]) -> UserCreatedOut:
    user, api_key, position = runtime_of(request).ledger.create_user(caller, body.name, body.role)
    return UserCreatedOut(**user_out(user).model_dump(), api_key=api_key, position=position)


@router.get("/users", responses=AUTHENTICATED)
def list_users(request: Request, caller: Caller) -> UsersOut:
    users = runtime_of(request).ledger.list_users(caller)
    return UsersOut(items=[user_out(user) for user in users])


def user_out(user) -> UserOut:
    return UserOut(id=user.id, name=user.name, role=user.role, available=user.available)


USER_ID = "0b8e6f52-3c1e-4f0e-9d9a-6c1f2a7e5b10"  # in examples


class KeyIssuedOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": USER_ID, "api_key": "lk_AbC…", "position": 42}]}
    )

    user_id: UUID
    api_key: str = Field(description="the new key, returned once: only its hash is kept")
    position: int


class KeysRevokedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": USER_ID, "revoked": 2, "position": 43}]})

    user_id: UUID
    revoked: int = Field(description="how many live keys were revoked (0: none was live, nothing appended)")
    position: int = Field(description="the log position of the last revocation (of the log's head when none)")


@router.post(
    "/users/{user_id}/keys",
    status_code=201,
    responses=AUTHENTICATED,
    description="A new key for the user (admin), returned once; the user's other keys keep working. A company's "
    "bot user may be given one too, for integrations that act as the bot.",
)
def issue_key(user_id: str, request: Request, caller: Caller) -> KeyIssuedOut:
    user_uuid = parse_id(user_id, "user")
    api_key, position = runtime_of(request).ledger.issue_key(caller, user_uuid)
    return KeyIssuedOut(user_id=user_uuid, api_key=api_key, position=position)


@router.delete(
    "/users/{user_id}/keys",
    responses={**AUTHENTICATED, **errors(409)},
    description="Revokes every key of the user (admin): the next request with one of them answers 401. An admin "
    "cannot revoke their own keys (409): another admin can.",
)
def revoke_keys(user_id: str, request: Request, caller: Caller) -> KeysRevokedOut:
    user_uuid = parse_id(user_id, "user")
    revoked, position = runtime_of(request).ledger.revoke_keys(caller, user_uuid)
    return KeysRevokedOut(user_id=user_uuid, revoked=revoked, position=position)


class NewSecret(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"webhook_secret": "the-new-twilio-auth-token"}]})

    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="twilio: the account's new auth token; else omit"
    )


@router.post(
    "/channels",
    status_code=201,
    responses={**AUTHENTICATED, **errors(409), **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewChannel]}),
)
def create_channel(request: Request, caller: Caller, body: Annotated[NewChannel, json_body(NewChannel)]) -> ChannelOut:
    channel, secret, position = runtime_of(request).ledger.create_channel(
        caller, body.kind, body.address, body.name, body.webhook_secret, body.credentials
    )
    return ChannelOut(**channel_info(request, channel, secret).model_dump(), webhook_secret=secret, position=position)


@router.get("/channels", responses=AUTHENTICATED)
def list_channels(request: Request, caller: Caller) -> ChannelsOut:
    channels = runtime_of(request).ledger.list_channels(caller)
    return ChannelsOut(items=[channel_info(request, channel) for channel in channels])


@router.get("/channels/{channel_id}", responses=AUTHENTICATED)
def get_channel(channel_id: str, request: Request, caller: Caller) -> ChannelInfoOut:
    channel = runtime_of(request).ledger.read_channel(caller, parse_id(channel_id, "channel"))
    return channel_info(request, channel)


@router.post(
    "/channels/{channel_id}/rotate-secret",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [NewSecret]}),
    description="A new webhook secret, returned once; the old one stops working at once.",
)
def rotate_secret(
    channel_id: str, request: Request, caller: Caller, body: Annotated[NewSecret, json_body(NewSecret)]
) -> ChannelOut:
    channel, secret, position = runtime_of(request).ledger.rotate_secret(
        caller, parse_id(channel_id, "channel"), body.webhook_secret
    )
    return ChannelOut(**channel_info(request, channel, secret).model_dump(), webhook_secret=secret, position=position)


def channel_info(request: Request, channel, secret: str | None = None) -> ChannelInfoOut:
    """With the secret (only when it was just made) the URLs carry it when the kind authenticates by URL
    (sendgrid's ?token=): the URLs to configure at the provider."""
    base_url = (runtime_of(request).settings.public_url or str(request.base_url)).rstrip("/")
    parameter = getattr(channel_kinds().get(channel.kind), "secret_query_parameter", None)
    query = f"?{urlencode({parameter: secret})}" if parameter and secret else ""
    return ChannelInfoOut(
        id=channel.id,
        kind=channel.kind,
        address=channel.address,
        name=channel.name,
        webhook_url=f"{base_url}/v1/webhooks/{channel.id}{query}",
        status_url=f"{base_url}/v1/webhooks/{channel.id}/status{query}",
    )
