"""Channel kinds: how each provider's webhook is verified and parsed.

A kind is a module in this package exposing `KIND`; adding a module adds a kind.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Literal, Protocol

from ledger.addresses import AddressKind
from ledger.plugins import module_attributes


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Thread:
    """A conversation the provider keys itself (an Intercom conversation): the ledger keys it by
    (company, provider, conversation id) instead of by the contact's address on the channel."""

    provider: str
    conversation_id: str


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    sender: str  # the contact's address (for an outbound message of a thread, the contact it was written to)
    recipient: str | None  # None: the channel's own address
    body: str
    preview: str
    message_type: str = "text"
    attachments: list[str] = field(default_factory=list)
    sent_at: datetime | None = None
    # A message of a provider-keyed conversation. Such messages come as a whole conversation, in order.
    thread: Thread | None = None
    sender_kind: AddressKind | None = None  # the sender's address kind, when not the channel kind's
    # "outbound": written by an agent in the provider's own tool and already delivered by it: recorded, never sent.
    direction: Literal["inbound", "outbound"] = "inbound"
    author: str | None = None  # the provider's author of an outbound message ("admin:814860")
    recipients: list[str] = field(default_factory=list)  # an email's other recipients: the channel may be one


@dataclass(frozen=True)
class StatusReport:
    """A provider's delivery status callback for one outbound message."""

    provider_message_id: str
    status: str  # one of ledger.delivery.STATUSES
    error_code: str | None = None
    provider_status: str | None = None  # the provider's own word for it (Twilio's "accepted" is queued)


@dataclass(frozen=True)
class Acknowledgement:
    """What a provider expects back when it is not the ledger's JSON answer."""

    body: bytes
    media_type: str


class ChannelKind(Protocol):
    name: str
    address_kind: AddressKind
    acknowledgement: Acknowledgement | None

    def verify(self, secret: str, request: WebhookRequest) -> None:
        """Raise InvalidSignature unless the request is signed with the secret."""

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        """Raise InvalidJson, UnsupportedMediaType or ValidationFailed on bad input."""

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        """A status callback (already verified); raises like parse on bad input."""


@cache
def channel_kinds() -> dict[str, ChannelKind]:
    return {kind.name: kind for kind in module_attributes(__name__, __path__, "KIND")}
