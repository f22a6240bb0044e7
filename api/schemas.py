"""What the API answers, as pydantic models, and the error answers each kind of route documents."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class ErrorOut(BaseModel):
    error_code: str = Field(description="one of the codes of section 5 of the product specification")
    message: str
    details: Any = Field(description="for validation_error: a list of {field, issue, message}; else any or null")


class ReadModel(BaseModel):
    """An answer read from a projection: the read model may grow fields before this model names them."""

    model_config = ConfigDict(extra="allow")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ProjectionProgress(BaseModel):
    position: int
    lag: int
    error: str | None = Field(default=None, description="why the projection is stopped, if it is")


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    postgres: str = Field(description='"ok", or why PostgreSQL is not ready')
    redis: str = Field(description='"ok", or why Redis is not ready')
    head_position: int | None = Field(default=None, description="the log's last position; absent without PostgreSQL")
    projections: dict[str, ProjectionProgress] | None = None


class CompanyCreatedOut(BaseModel):
    id: UUID
    name: str
    api_key: str = Field(description="the admin user's key, returned once")
    admin_user_id: UUID
    bot_user_id: UUID
    position: int


class UserOut(BaseModel):
    id: UUID
    name: str
    role: Literal["admin", "agent", "auditor", "bot"]
    available: bool = Field(description="agents and admins marked available receive handoffs")


class UserCreatedOut(UserOut):
    api_key: str = Field(description="the user's key, returned once")
    position: int


class UsersOut(BaseModel):
    items: list[UserOut]


class ChannelInfoOut(BaseModel):
    id: UUID
    kind: str
    address: str
    name: str
    webhook_url: str = Field(description="where the provider posts inbound messages")
    status_url: str = Field(description="where the provider posts delivery status callbacks")


class ChannelOut(ChannelInfoOut):
    webhook_secret: str = Field(description="returned once; provider credentials are never returned")
    position: int


class ChannelsOut(BaseModel):
    items: list[ChannelInfoOut]


class TransferredOut(BaseModel):
    conversation_id: UUID
    owner_id: UUID | None = Field(description="null: the unassigned queue")
    position: int


class ConversationStatusOut(BaseModel):
    conversation_id: UUID
    status: Literal["open", "closed"]
    position: int


class FaqEntry(BaseModel):
    question: str = Field(min_length=1, max_length=1000)
    answer: str = Field(min_length=1, max_length=4000)


class FaqOut(BaseModel):
    entries: list[FaqEntry]
    handoff_phrases: list[str]
    position: int


class MessageQueuedOut(BaseModel):
    message_id: UUID
    conversation_id: UUID
    status: str = Field(description='"queued" when new; the current status for a repeated Idempotency-Key')
    position: int


class StatusRecordedOut(BaseModel):
    message_id: UUID
    status: str = Field(description="the message's status after the report (it never moves backwards)")
    position: int


class WebhookAccepted(BaseModel):
    message_id: UUID
    conversation_id: UUID
    contact_id: UUID
    position: int
    deduplicated: bool


class SummaryOut(ReadModel):
    id: UUID
    number: int = Field(description="1, 2, 3... per company in log order, like a ticket number")
    channel_id: UUID
    contact_id: UUID
    owner_id: UUID | None
    status: Literal["open", "closed"]
    participants: list[str]
    message_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    created_at: datetime
    updated_at: datetime


class InboxItem(SummaryOut):
    unread_count: int = Field(
        description="inbound messages after the latest of the last outbound written by a person and the owner's "
        "read marker"
    )
    waiting_since: datetime | None = Field(
        description="the oldest inbound message after the last outbound written by a person (the bot's replies do "
        "not end a wait); null when none waits"
    )


class InboxOut(BaseModel):
    owner_id: UUID | None = Field(description="null: the unassigned queue")
    open_count: int = Field(description="open conversations in this inbox (items may be fewer, see limit)")
    items: list[InboxItem] = Field(description="open conversations, longest waiting first (waiting_since nulls last)")


class InboxEventOut(BaseModel):
    """The data of one event of GET /v1/inbox/stream: one change of the caller's inbox. The event's
    `id` is the log position of the change; send it back as `Last-Event-ID` to resume."""

    conversation_id: UUID
    change: Literal["added", "updated", "removed"] = Field(
        description="added: started, transferred here or reopened; removed: transferred away or closed"
    )
    cause: str = Field(description="the log event: Started, InboundMessageReceived, OwnerTransferred...")
    owner_id: UUID | None = Field(description="the conversation's owner after the change (null: unassigned)")
    status: Literal["open", "closed"]
    unread_count: int
    waiting_since: datetime | None
    open_count: int = Field(description="open conversations in this inbox after the change")


class ConversationPage(BaseModel):
    items: list[SummaryOut]
    next_cursor: str | None


class MessageOut(ReadModel):
    id: UUID
    seq: int
    direction: Literal["inbound", "outbound"]
    author_id: UUID | None
    contact_id: UUID | None
    body: str
    attachments: list[str]
    type: str
    sent_at: datetime | None
    recorded_at: datetime
    status: str
    provider_message_id: str | None


class StatusChange(ReadModel):
    status: str
    at: str = Field(description="ISO 8601 time the ledger recorded it")
    source: Literal["ledger", "provider"]
    error_code: str | None = None
    reason: str | None = None


class Attempt(ReadModel):
    n: int
    started_at: str
    outcome: Literal["sent", "retry", "failed"] | None = Field(
        description="null while in flight, or if a crash lost it"
    )
    http_status: int | None
    reason: str | None
    next_attempt_at: str | None


class MessageDetailOut(MessageOut):
    conversation_id: UUID
    status_history: list[StatusChange]
    attempts: list[Attempt] = Field(description="outbound messages: each provider call, in order")
    failure_reason: str | None


class ConversationOut(SummaryOut):
    messages: list[MessageOut] = Field(description="ordered by seq")


class ConversationStateOut(ConversationOut):
    """The conversation as it was, replayed from the log."""

    number: int | None = Field(
        description="not in the log: given once by the summaries read model (null until it has seen the conversation)"
    )

    version: int = Field(description="the last version of the conversation's stream included")
    at: datetime = Field(description="the time asked for or, given a version, the time that version was recorded")


class Provenance(ReadModel):
    value: Any
    source_message_id: UUID | None
    method: str
    at: str = Field(description="ISO 8601 time")
    actor: str | None = None


class ContactOut(ReadModel):
    id: UUID
    addresses: list[str]
    name: str | None
    email: str | None
    phone: str | None
    custom_fields: dict[str, Any]
    provenance: dict[str, Provenance]
    erased: bool | None = None


def _error(description: str, message: str, details: Any = None, headers: dict | None = None) -> dict:
    """An error answer documented with the error model and an example body (its code opens the description)."""
    example = {"error_code": description.split(":", 1)[0], "message": message, "details": details}
    response: dict[str, Any] = {
        "model": ErrorOut,
        "description": description,
        "content": {"application/json": {"example": example}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
INVALID_FIELD = [{"field": "name", "issue": "string_too_short", "message": "String should have at least 1 character"}]
ERRORS = {
    400: _error(
        "invalid_json: the body is not valid JSON (or, for forms, not a valid form)", "the body is not valid JSON"
    ),
    401: _error("unauthorized: no valid `Authorization: Bearer <key>`", "unknown or revoked API key"),
    403: _error("forbidden: the caller's role may not do this", "this needs the role admin; you are agent"),
    404: _error("not_found: no such resource in the caller's company", "no such conversation"),
    409: _error("conflict: contradicts what exists", "this company already has a sms channel for +18045550100"),
    413: _error("payload_too_large: the body is larger than the limit", "the body is larger than 1048576 bytes"),
    415: _error(
        "unsupported_media_type: the body's Content-Type is not the documented one",
        "expected application/json, got text/plain",
    ),
    422: _error(
        "validation_error: details is a list of {field, issue, message}", "the request is not valid", INVALID_FIELD
    ),
    503: _error(
        "unavailable or projection_lagging: retry after Retry-After",
        "the read model has not reached position 42 yet",
        {"projections": ["summaries"]},
        RETRY_AFTER,
    ),
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERRORS[status] for status in statuses}


POSITIONED = {
    200: {
        "headers": {
            "X-Ledger-Position": {
                "description": "the log position the read model had reached",
                "schema": {"type": "integer"},
            }
        }
    }
}
AUTHENTICATED = errors(401, 403, 404, 422, 503)
WITH_BODY = errors(400, 413, 415, 422)
WEBHOOK = {
    **errors(400, 404, 413, 415, 422, 503),
    401: _error(
        "invalid_signature: the request is not signed with the channel's webhook secret",
        "X-Ledger-Signature does not match the body signed with the channel's webhook secret",
        {"reason": "mismatched", "credential": "X-Ledger-Signature"},
    ),
}


def request_body(content: dict[str, list[type[BaseModel]]]) -> dict[str, Any]:
    """An `openapi_extra` documenting a body that the route parses itself (after authenticating).
    content: media type -> the models a body of that type may follow (any one of them)."""
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": any_of(models)} for media_type, models in content.items()},
        }
    }


def any_of(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas = [inline_schema(model) for model in models]
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    if "$defs" in schema:  # its references would point at the document's root
        raise TypeError(f"{model.__name__} nests models; document it as a component instead")
    return schema


class HistoryEventOut(BaseModel):
    position: int = Field(description="the event's position in the log")
    version: int = Field(description="its version in the stream: 1, 2, 3...")
    type: str
    recorded_at: datetime | None = Field(description="null if the stored event no longer decodes")
    actor: str | None
    data: dict[str, Any] | None
    hash: str | None = Field(description="SHA-256 of the event's canonical encoding with prev_hash; null if missing")
    prev_hash: str | None


class HistoryOut(BaseModel):
    conversation_id: UUID
    events: list[HistoryEventOut]
    head_hash: str | None = Field(description="the last event's hash, recomputed from the log")
    verified: bool = Field(description="the whole chain verifies, up to the stream's anchored head")
    broken_at: int | None = Field(description="the first version that does not verify")


AssistanceStatus = Literal["queued", "sent", "failed"]


class AssistanceQueuedOut(BaseModel):
    id: UUID
    topic: str
    channel_id: UUID = Field(description="the channel the topic was routed to")
    status: AssistanceStatus = Field(description='"queued" when new; the current status for a repeated Idempotency-Key')
    position: int


class AssistanceRequestOut(ReadModel):
    id: UUID
    topic: str
    description: str
    channel_id: UUID
    to: str = Field(description="the address the channel sends the request to")
    conversation_id: UUID | None
    requested_by: str = Field(description="the actor: user:<id> or bot:<id>")
    status: AssistanceStatus = Field(description="queued until the send settles (through retries), then sent or failed")
    attempts: list[Attempt] = Field(description="each provider call, in order")
    failure_reason: str | None
    provider_message_id: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class RoutingRuleOut(BaseModel):
    topic: str
    channel_id: UUID
    to: str = Field(description="where the channel sends the topic's requests (by default its own address)")
    position: int
