"""Outbound providers: how a channel kind's messages are sent.

A provider is a module in this package exposing `PROVIDER`; adding a module adds one.
Each sends one `Delivery` to the provider's real API shape at a base URL (spec section 7)
and classifies the answer. It never retries: the dispatcher owns retries, so that each
call is preceded by its own recorded attempt.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, Protocol

from ledger.plugins import module_attributes

Outcome = Literal["sent", "retry", "rejected"]


@dataclass(frozen=True)
class Delivery:
    message_id: str  # also the Idempotency-Key of every attempt of this message
    kind: str  # the channel kind
    from_address: str  # the channel's address
    to: str  # the contact's normalized address
    body: str
    attachments: list[str]
    message_type: str  # "text", or for sms "sms"/"mms"
    queued_at: str  # ISO 8601 UTC
    status_url: str  # the channel's status callback URL
    credentials: Mapping[str, str] = field(default_factory=dict)  # account_sid, api_key, webhook_url...
    secret: str | None = None  # the channel's webhook secret (Twilio: the auth token)


@dataclass(frozen=True)
class ProviderAnswer:
    outcome: Outcome
    http_status: int | None  # None when no answer came (timeout, connection refused)
    provider_message_id: str | None = None
    reason: str | None = None  # why it failed, for people
    retry_after: float | None = None  # seconds, from a 429's Retry-After


class Provider(Protocol):
    kind: str

    def send(self, delivery: Delivery, base_url: str | None, timeout: float) -> ProviderAnswer:
        """One call to the provider with `Idempotency-Key: delivery.message_id` and the timeout.
        Never raises for what the provider or the network did: answers retry or rejected."""


@cache
def providers() -> dict[str, Provider]:
    return {provider.kind: provider for provider in module_attributes(__name__, __path__, "PROVIDER")}
