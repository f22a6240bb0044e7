"""The provider APIs the delivery adapters call, each answering its provider's success shape.

Twilio's Messages API (form, basic auth `AccountSid:AuthToken`), SendGrid's v3 mail/send (bearer key,
the id in `X-Message-Id`), Slack incoming webhooks (`ok`, no id: Slack gives none, so the log shows
null), and the JSON `sms`, `email` and `whatsapp` providers.
"""

import base64
import binascii
import secrets
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Form, Header, Request, Response

from mock_providers import callbacks
from mock_providers.delivery import REJECTIONS, Call, deliver, json_rejection, retry_after_header
from mock_providers.models import (
    EmailAnswer,
    EmailRequest,
    FaultKind,
    SendgridMail,
    SlackMessage,
    SmsAnswer,
    SmsRequest,
    TwilioError,
    TwilioMessage,
    TwilioMessageForm,
    WhatsappAnswer,
    WhatsappRequest,
)
from mock_providers.state import Answer, MockState

router = APIRouter(tags=["providers"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Authorization = Annotated[str | None, Header()]
TWILIO_CODES = {"429": 20429, "500": 20500, "400": 21211}  # Twilio's error codes for the faults


def state_of(request: Request) -> MockState:
    return request.app.state.mock


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


# Twilio


def basic_auth(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header; None when missing or malformed."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon and user and password else None


def twilio_error(status: int, code: int, message: str, **extra: str) -> Answer:
    error = TwilioError(
        code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}", status=status, **extra
    )
    return Answer.json(status, error.model_dump(exclude_none=True))


def twilio_rejection(kind: FaultKind, retry_after: int) -> Answer:
    """Twilio's error JSON, which the SDK turns into TwilioRestException; a 400 also says `error`, as the others."""
    extra = {"error": REJECTIONS[kind]} if kind == "400" else {}
    error = twilio_error(int(kind), TWILIO_CODES[kind], REJECTIONS[kind].capitalize(), **extra)
    return Answer(error.status, error.content, error.media_type, retry_after_header(kind, retry_after))


def twilio_refusal(auth: tuple[str, str] | None, form: TwilioMessageForm) -> Answer | None:
    if auth is None:
        return twilio_error(401, 20003, "Authentication Error - No credentials provided")
    if not form.To:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not form.From and not form.MessagingServiceSid:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not form.Body and not form.MediaUrl:
        return twilio_error(400, 21602, "Message body is required.")
    return None


def twilio_message(account_sid: str, form: TwilioMessageForm) -> Answer:
    sid = new_id("SM")
    now = format_datetime(datetime.now(UTC))
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
    message = TwilioMessage(
        sid=sid,
        account_sid=account_sid,
        to=form.To,
        from_=form.From,
        body=form.Body or "",
        num_media=str(len(form.MediaUrl)),
        date_created=now,
        date_updated=now,
        uri=f"{uri}.json",
        messaging_service_sid=form.MessagingServiceSid,
        subresource_uris={"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
    )
    return Answer.json(201, message.model_dump(by_alias=True), provider_message_id=sid)


@router.post(
    "/2010-04-01/Accounts/{account_sid}/Messages.json",
    status_code=201,
    response_model=TwilioMessage,
    responses={code: {"model": TwilioError} for code in (400, 401, 429, 500)},
)
async def twilio_messages(
    account_sid: str,
    request: Request,
    form: Annotated[TwilioMessageForm, Form()],
    idempotency_key: IdempotencyKey = None,
    authorization: Authorization = None,
) -> Response:
    state = state_of(request)
    auth = basic_auth(authorization)

    def on_answered(answer: Answer) -> None:
        if form.StatusCallback:
            target = callbacks.CallbackTarget(
                url=form.StatusCallback,
                auth_token=auth[1],
                account_sid=account_sid,
                message_sid=answer.provider_message_id,
                sender=form.From,
                recipient=form.To,
            )
            callbacks.schedule(state, target)

    call = Call(
        provider="twilio",
        path=request.url.path,
        idempotency_key=idempotency_key,
        to=form.To,
        body=form.Body,
        accept=lambda: twilio_message(account_sid, form),
        reject=twilio_rejection,
        refusal=twilio_refusal(auth, form),
        on_answered=on_answered,
    )
    return await deliver(state, call)


# SendGrid


def sendgrid_error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """SendGrid's `{"errors": [...]}`, with `error` beside it as the other providers say it."""
    payload = {"error": message, "errors": [{"message": message, "field": None, "help": None}]}
    return Answer.json(status, payload, headers=headers)


def sendgrid_rejection(kind: FaultKind, retry_after: int) -> Answer:
    return sendgrid_error(int(kind), REJECTIONS[kind], retry_after_header(kind, retry_after))


def sendgrid_accepted() -> Answer:
    message_id = secrets.token_urlsafe(16)
    return Answer(202, headers={"X-Message-Id": message_id}, provider_message_id=message_id)


def has_bearer(authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


@router.post("/v3/mail/send", status_code=202, response_class=Response, responses={202: {"description": "queued"}})
async def sendgrid_mail_send(
    mail: SendgridMail, request: Request, idempotency_key: IdempotencyKey = None, authorization: Authorization = None
) -> Response:
    recipients = [address.email for personalization in mail.personalizations for address in personalization.to]
    refusal = None if has_bearer(authorization) else sendgrid_error(401, "authorization required")
    call = Call(
        provider="sendgrid",
        path=request.url.path,
        idempotency_key=idempotency_key,
        to=recipients[0] if recipients else None,
        body=mail.content[0].value if mail.content else None,
        accept=sendgrid_accepted,
        reject=sendgrid_rejection,
        refusal=refusal,
    )
    return await deliver(state_of(request), call)


# Slack


@router.post("/services/{hook:path}", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def slack_webhook(
    hook: str, message: SlackMessage, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    call = Call(
        provider="slack",
        path=request.url.path,
        idempotency_key=idempotency_key,
        to=None,
        body=message.text,
        accept=lambda: Answer(200, b"ok", "text/plain"),
        reject=json_rejection,
    )
    return await deliver(state_of(request), call)


# The JSON providers


JSON_ANSWERS = {"sms": ("sms-", SmsAnswer), "email": ("xil-", EmailAnswer), "whatsapp": ("wa-", WhatsappAnswer)}


def json_call(request: Request, provider: str, idempotency_key: str | None, to: str, body: str) -> Call:
    """A JSON provider's call; its answer is its one-field answer model holding a new id."""
    prefix, model = JSON_ANSWERS[provider]
    (id_field,) = model.model_fields

    def accept() -> Answer:
        provider_id = new_id(prefix)
        return Answer.json(200, {id_field: provider_id}, provider_message_id=provider_id)

    return Call(provider, request.url.path, idempotency_key, to, body, accept=accept, reject=json_rejection)


@router.post("/sms", response_model=SmsAnswer)
async def sms_send(message: SmsRequest, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    return await deliver(state_of(request), json_call(request, "sms", idempotency_key, message.to, message.body))


@router.post("/email", response_model=EmailAnswer)
async def email_send(message: EmailRequest, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    return await deliver(state_of(request), json_call(request, "email", idempotency_key, message.to, message.body))


@router.post("/whatsapp", response_model=WhatsappAnswer)
async def whatsapp_send(message: WhatsappRequest, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    call = json_call(request, "whatsapp", idempotency_key, message.to, message.text)
    return await deliver(state_of(request), call)
