"""Inbound provider webhooks: verify, parse, append exactly once."""

from fastapi import APIRouter, Depends, Request, Response

from api.dependencies import committed, parse_id, runtime_of
from api.errors import OrjsonResponse
from api.runtime import Runtime
from ledger.channels import WebhookRequest, channel_kinds

router = APIRouter(prefix="/v1", tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/webhooks/{channel_id}", status_code=201)
def receive_webhook(channel_id: str, request: Request, body: bytes = Depends(raw_body)) -> Response:
    runtime = runtime_of(request)
    channel = runtime.ledger.get_channel(parse_id(channel_id, "channel"))
    kind = channel_kinds()[channel.kind]
    webhook = WebhookRequest(url=signed_url(runtime, request), headers=request.headers, body=body)
    kind.verify(runtime.ledger.channel_secret(channel), webhook)
    results = [runtime.ledger.ingest(channel, message) for message in kind.parse(webhook)]
    last = results[-1]
    status = 200 if all(result.deduplicated for result in results) else 201
    position = committed(runtime, max(result.position for result in results))
    headers = {"X-Ledger-Position": str(position)}
    if kind.acknowledgement is not None:
        ack = kind.acknowledgement
        return Response(ack.body, status_code=status, media_type=ack.media_type, headers=headers)
    answer = {
        "message_id": last.message_id,
        "conversation_id": last.conversation_id,
        "contact_id": last.contact_id,
        "position": position,
        "deduplicated": status == 200,
    }
    return OrjsonResponse(answer, status_code=status, headers=headers)


def signed_url(runtime: Runtime, request: Request) -> str:
    """The URL the provider called, as it signed it (LEDGER_PUBLIC_URL behind a proxy)."""
    if not runtime.settings.public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return runtime.settings.public_url.rstrip("/") + request.url.path + query
