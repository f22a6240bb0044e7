"""Agents at work: transfers, close, reopen, read markers, availability, and the bot's FAQ."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from api.dependencies import Caller, json_body, parse_id, runtime_of
from api.models import RequestBody
from api.routes.tenants import user_out
from api.schemas import (
    AUTHENTICATED,
    WITH_BODY,
    ConversationStatusOut,
    FaqOut,
    TransferredOut,
    UserOut,
    request_body,
)

router = APIRouter(prefix="/v1", tags=["handling"])


class Transfer(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"to_user_id": None, "reason": "needs billing"}]})

    to_user_id: UUID | None = Field(description="a user of the company; null puts it in the unassigned queue")
    reason: str | None = Field(default=None, max_length=500)


class Availability(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"available": True}]})

    available: bool


class Faq(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"entries": [{"question": "What are your hours?", "answer": "9 to 5"}]}]}
    )

    entries: list[dict[str, Annotated[str, Field(max_length=4000)]]] = Field(
        max_length=500, description="[{question, answer}]"
    )
    handoff_phrases: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=100, description='default: "human", "agent", "real person", "talk to someone"...'
    )


@router.post(
    "/conversations/{conversation_id}/transfer",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [Transfer]}),
)
def transfer(
    conversation_id: str, request: Request, caller: Caller, body: Annotated[Transfer, json_body(Transfer)]
) -> TransferredOut:
    handled = runtime_of(request).ledger.transfer(
        caller, parse_id(conversation_id, "conversation"), body.to_user_id, body.reason
    )
    return TransferredOut(conversation_id=handled.conversation_id, owner_id=handled.owner_id, position=handled.position)


def status_route(path: str, command_name: str, description: str):
    @router.post(f"/conversations/{{conversation_id}}/{path}", responses=AUTHENTICATED, description=description)
    def change(conversation_id: str, request: Request, caller: Caller) -> ConversationStatusOut:
        command = getattr(runtime_of(request).ledger, command_name)
        handled = command(caller, parse_id(conversation_id, "conversation"))
        return ConversationStatusOut(
            conversation_id=handled.conversation_id, status=handled.status, position=handled.position
        )

    change.__name__ = f"{path}_conversation"
    return change


close = status_route("close", "close_conversation", "Closes the conversation; a new inbound message reopens it.")
reopen = status_route("reopen", "reopen_conversation", "Reopens the conversation, back in its owner's queue.")
read = status_route("read", "mark_read", "Marks the conversation read up to its last message, for the caller.")


@router.put(
    "/users/{user_id}/availability",
    responses={**AUTHENTICATED, **WITH_BODY},
    openapi_extra=request_body({"application/json": [Availability]}),
)
def set_availability(
    user_id: str, request: Request, caller: Caller, body: Annotated[Availability, json_body(Availability)]
) -> UserOut:
    user, _ = runtime_of(request).ledger.set_availability(caller, parse_id(user_id, "user"), body.available)
    return user_out(user)


@router.put(
    "/bot/faq", responses={**AUTHENTICATED, **WITH_BODY}, openapi_extra=request_body({"application/json": [Faq]})
)
def set_faq(request: Request, caller: Caller, body: Annotated[Faq, json_body(Faq)]) -> FaqOut:
    config, position = runtime_of(request).ledger.set_faq(caller, body.entries, body.handoff_phrases)
    return FaqOut(entries=config.entries, handoff_phrases=config.handoff_phrases, position=position)
