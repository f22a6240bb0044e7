"""A conversation as it was: a pure fold over its decoded events, in version order, computing what
the summaries and timeline read models compute (same fields, same status fold: the timeline builds
its rows with `new_message` and folds statuses with `folded`). No I/O."""

from collections.abc import Iterable
from datetime import datetime

from ledger.delivery import folded
from ledger.messaging import Conversation

MessageEvent = (
    Conversation.InboundMessageReceived | Conversation.OutboundMessageQueued | Conversation.OutboundMessageImported
)
MESSAGE_EVENTS = (
    Conversation.InboundMessageReceived,
    Conversation.OutboundMessageQueued,
    Conversation.OutboundMessageImported,
)
IMPORTED_STATUS = "sent"  # an imported outbound message: the provider sent it; no callback will say more


def conversation_state(events: Iterable[Conversation.Event]) -> dict:
    """The summary fields and the messages (ordered by seq) after these events."""
    state: dict = {}
    messages: dict[str, dict] = {}
    for event in events:
        if isinstance(event, Conversation.Started):
            state = {
                "id": event.originator_id,
                "channel_id": event.channel_id,
                "contact_id": event.contact_id,
                "owner_id": event.owner_id,
                "status": "open",
                "participants": [event.contact_address, event.channel_address],
                "message_count": 0,
                "last_message_at": None,
                "last_message_preview": None,
                "created_at": event.recorded_at,
                "updated_at": event.recorded_at,
            }
        elif isinstance(event, MESSAGE_EVENTS):
            messages[event.message_id] = new_message(event)
            if getattr(event, "sender", None) is not None:  # the address, known again after an erasure
                state["participants"][0] = event.sender
            state["message_count"] += 1
            state.update(
                last_message_at=event.recorded_at, last_message_preview=event.preview, updated_at=event.recorded_at
            )
        elif isinstance(event, Conversation.OwnerTransferred):
            state.update(owner_id=event.to_owner_id, updated_at=event.recorded_at)
        elif isinstance(event, Conversation.Closed | Conversation.Reopened):
            closed = isinstance(event, Conversation.Closed)
            state.update(status="closed" if closed else "open", updated_at=event.recorded_at)
        elif isinstance(event, Conversation.OutboundAttemptStarted):
            fold_status(messages[event.message_id], "sending")
        elif isinstance(event, Conversation.OutboundMessageSent):
            message = messages[event.message_id]
            message.update(provider_message_id=event.provider_message_id, sent_at=event.recorded_at)
            fold_status(message, "sent")
        elif isinstance(event, Conversation.OutboundMessageFailed):
            fold_status(messages[event.message_id], "failed")
        elif isinstance(event, Conversation.DeliveryStatusReported):
            fold_status(messages[event.message_id], event.status)
        # OutboundAttemptFailed and ReadMarked change neither the summary nor a message's fields shown here
    if not state:
        raise ValueError("the events do not start with Conversation.Started")
    return {**state, "messages": sorted(messages.values(), key=lambda message: message["seq"])}


def new_message(event: MessageEvent) -> dict:
    """An imported outbound message (written and delivered in the provider's tool) has no ledger author,
    and its provider's id and time like an inbound one."""
    inbound = isinstance(event, Conversation.InboundMessageReceived)
    queued = isinstance(event, Conversation.OutboundMessageQueued)
    return {
        "id": event.message_id,
        "seq": event.seq,
        "direction": "inbound" if inbound else "outbound",
        "author_id": event.author_id if queued else None,
        "contact_id": event.contact_id,
        "body": event.body,
        "attachments": list(event.attachments),
        "type": event.message_type,
        "sent_at": None if queued else parsed(event.sent_at),
        "recorded_at": event.recorded_at,
        "status": "received" if inbound else "queued" if queued else IMPORTED_STATUS,
        "provider_message_id": None if queued else event.provider_message_id,
    }


def fold_status(message: dict, status: str) -> None:
    message["status"] = folded(message["status"], status)


def parsed(moment: str | None) -> datetime | None:
    return None if moment is None else datetime.fromisoformat(moment)
