"""Companies, users and channels."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import ConfigDict, Field

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
    return ChannelOut(**channel_info(request, channel).model_dump(), webhook_secret=secret, position=position)


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
    return ChannelOut(**channel_info(request, channel).model_dump(), webhook_secret=secret, position=position)


def channel_info(request: Request, channel) -> ChannelInfoOut:
    base_url = (runtime_of(request).settings.public_url or str(request.base_url)).rstrip("/")
    return ChannelInfoOut(
        id=channel.id,
        kind=channel.kind,
        address=channel.address,
        name=channel.name,
        webhook_url=f"{base_url}/v1/webhooks/{channel.id}",
        status_url=f"{base_url}/v1/webhooks/{channel.id}/status",
    )
