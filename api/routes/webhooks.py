"""Inbound provider webhooks: verify, parse, append exactly once."""

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import parse_id, runtime_of
from api.errors import OrjsonResponse
from api.runtime import Runtime
from api.schemas import WEBHOOK, ErrorOut, WebhookAccepted, request_body
from ledger.channels import WebhookRequest
from ledger.channels.email import EmailPayload
from ledger.channels.intercom import IntercomConversation, NotificationEvent
from ledger.channels.sendgrid import MULTIPART
from ledger.channels.sms import SmsPayload
from ledger.channels.twilio import FORM, TwilioPayload
from ledger.channels.whatsapp import WhatsappPayload

router = APIRouter(prefix="/v1", tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    return await request.body()


TWIML = {"text/xml": {"schema": {"type": "string"}, "example": '<?xml version="1.0" encoding="UTF-8"?><Response/>'}}
ACCEPTED = {
    201: {
        "description": "appended (intercom: at least one message of the conversation was new); twilio channels get "
        "TwiML instead of JSON",
        "content": TWIML,
    },
    200: {
        "model": WebhookAccepted,
        "description": "a duplicate (intercom: every message of the conversation was received before): the same ids, "
        "nothing appended",
        "content": TWIML,
    },
}
REFUSED = {
    401: {
        "model": ErrorOut,
        "description": "invalid_signature: the request's credential (X-Ledger-Signature, X-Twilio-Signature, "
        "X-Hub-Signature, or sendgrid's ?token=) is missing, malformed or does not match the channel's webhook "
        "secret; `details.reason` says which, `details.credential` names it",
        "content": {
            "application/json": {
                "example": {
                    "error_code": "invalid_signature",
                    "message": "X-Hub-Signature is malformed: expected sha1=<40 hex digits>",
                    "details": {"reason": "malformed", "credential": "X-Hub-Signature"},
                }
            }
        },
    }
}


class SendgridInboundParse(BaseModel):
    """SendGrid Inbound Parse's form (the fields read; the rest is ignored)."""

    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", description='"Name <address>"', examples=["Ann Lee <ann@example.com>"])
    to: str = Field(description="the channel's address must be a recipient (or in envelope.to)")
    subject: str | None = None
    text: str | None = Field(default=None, description="the body when there is no html")
    html: str | None = Field(default=None, description="kept as the body; a text preview is derived")
    headers: str = Field(description="the raw header block; its Message-ID deduplicates")
    envelope: str | None = Field(default=None, description='JSON: {"to": [...], "from": "..."}')
    charsets: str | None = Field(default=None, description="JSON: the charset of each field")
    attachments: str | None = Field(default=None, description="how many files follow")
    attachment_info: str | None = Field(
        default=None, alias="attachment-info", description='JSON: {"attachment1": {"filename", "name", "type"}}'
    )
    attachment1: bytes | None = Field(
        default=None, description="a file (attachment1, attachment2...): only its name is kept"
    )


def inlined(schema: dict) -> dict:
    """The model's JSON schema with its $defs put in place (the document's root has none)."""
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def numbers_as_strings(node):
    """The schema as the Intercom models read it: they take a number where a string is declared (Intercom's
    ids are numbers in some clients), so the document says string or number."""
    if isinstance(node, dict):
        typed = {"type": ["string", "number"]} if node.get("type") == "string" else {}
        return {key: numbers_as_strings(value) for key, value in node.items()} | typed
    if isinstance(node, list):
        return [numbers_as_strings(item) for item in node]
    return node


INTERCOM_CONVERSATION = numbers_as_strings(inlined(IntercomConversation.model_json_schema()))
INTERCOM_ENVELOPE = numbers_as_strings(inlined(NotificationEvent.model_json_schema()))
INTERCOM_ENVELOPE["properties"]["data"]["properties"]["item"] = INTERCOM_CONVERSATION
PAYLOADS = request_body({"application/json": [SmsPayload, EmailPayload, WhatsappPayload], FORM: [TwilioPayload]})
PAYLOADS["requestBody"]["content"]["application/json"]["schema"]["anyOf"] += [INTERCOM_CONVERSATION, INTERCOM_ENVELOPE]
PAYLOADS["requestBody"]["content"][MULTIPART] = {"schema": SendgridInboundParse.model_json_schema()}
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
        {
            "name": "X-Hub-Signature",
            "in": "header",
            "required": False,
            "description": "intercom: sha1=<hex HMAC-SHA1 of the raw body with the webhook secret (the Intercom "
            "app's client secret)>",
            "schema": {"type": "string"},
        },
        {
            "name": "token",
            "in": "query",
            "required": False,
            "description": "sendgrid: the channel's webhook secret (Inbound Parse signs nothing), compared in "
            "constant time",
            "schema": {"type": "string"},
        },
    ]
}


@router.post(
    "/webhooks/{channel_id}",
    status_code=201,
    response_model=WebhookAccepted,
    responses={**ACCEPTED, **WEBHOOK, **REFUSED},
    openapi_extra={**PAYLOADS, **SIGNATURES},
    description="The body follows the channel kind's payload: JSON (sms, email, whatsapp; intercom: a conversation "
    "or the notification_event around one), Twilio's form, or SendGrid Inbound Parse's multipart form.",
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
    appended = [message for message in received.messages if not message.deduplicated]
    last = (appended or received.messages)[-1]  # a conversation's re-delivery: the last message it added
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
