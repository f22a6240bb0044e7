"""Inbound provider webhooks: verify, parse, append exactly once."""

from fastapi import APIRouter, Depends, Request, Response

from api.dependencies import parse_id, runtime_of
from api.errors import OrjsonResponse
from api.runtime import Runtime
from api.schemas import WEBHOOK, WebhookAccepted, request_body
from ledger.channels import WebhookRequest
from ledger.channels.email import EmailPayload
from ledger.channels.sms import SmsPayload
from ledger.channels.twilio import FORM, TwilioPayload
from ledger.channels.whatsapp import WhatsappPayload

router = APIRouter(prefix="/v1", tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    return await request.body()


TWIML = {"text/xml": {"schema": {"type": "string"}, "example": '<?xml version="1.0" encoding="UTF-8"?><Response/>'}}
ACCEPTED = {
    201: {"description": "appended; twilio channels get TwiML instead of JSON", "content": TWIML},
    200: {"model": WebhookAccepted, "description": "a duplicate: the same ids, nothing appended", "content": TWIML},
}
PAYLOADS = request_body({"application/json": [SmsPayload, EmailPayload, WhatsappPayload], FORM: [TwilioPayload]})
SIGNATURES = {
    "parameters": [
        {
            "name": "X-Ledger-Signature",
            "in": "header",
            "required": False,
            "description": "sms, email, whatsapp: sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>",
            "schema": {"type": "string"},
        },
        {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": False,
            "description": "twilio: Twilio's signature of the URL and the form with the account's auth token",
            "schema": {"type": "string"},
        },
    ]
}


@router.post(
    "/webhooks/{channel_id}",
    status_code=201,
    response_model=WebhookAccepted,
    responses={**ACCEPTED, **WEBHOOK},
    openapi_extra={**PAYLOADS, **SIGNATURES},
    description="The body follows the channel kind's payload: JSON (sms, email, whatsapp) or Twilio's form.",
)
def receive_webhook(channel_id: str, request: Request, body: bytes = Depends(raw_body)) -> Response:
    runtime = runtime_of(request)
    webhook = WebhookRequest(url=signed_url(runtime, request), headers=request.headers, body=body)
    with runtime.metrics.webhook_rejections():
        received = runtime.ledger.receive_webhook(parse_id(channel_id, "channel"), webhook)
    runtime.metrics.webhook_received(received.deduplicated)
    status = 200 if received.deduplicated else 201
    headers = {"X-Ledger-Position": str(received.position)}
    if received.acknowledgement is not None:
        ack = received.acknowledgement
        return Response(ack.body, status_code=status, media_type=ack.media_type, headers=headers)
    last = received.messages[-1]
    answer = WebhookAccepted(
        message_id=last.message_id,
        conversation_id=last.conversation_id,
        contact_id=last.contact_id,
        position=received.position,
        deduplicated=received.deduplicated,
    )
    return OrjsonResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)


def signed_url(runtime: Runtime, request: Request) -> str:
    """The URL the provider called, as it signed it (LEDGER_PUBLIC_URL behind a proxy)."""
    if not runtime.settings.public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return runtime.settings.public_url.rstrip("/") + request.url.path + query
