"""The commands the seed dialects need beyond /v1's: a channel found by its kind and address, an inbound
message posted with a company key instead of a provider's signature, and a reply written as a named
user. Each ends in the commands /v1 uses (ingest, send_to_address, send_to_conversation), so a dialect
appends exactly the events /v1 would. Mixed into the Ledger."""

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel

from ledger.addresses import normalize
from ledger.channels import InboundMessage, channel_kinds
from ledger.channels._payloads import validate
from ledger.errors import NotFound, ValidationFailed
from ledger.sending import SENDERS, Queued
from ledger.tenancy import Channel, ChannelAddress, Company, User
from ledger.tenants import Principal

if TYPE_CHECKING:
    from ledger.application import Ingested

INTEGRATORS = ("admin",)  # who may post a provider's inbound message with a company key


@dataclass(frozen=True)
class Received:
    """An inbound message appended (or found appended before) through a dialect."""

    ingested: "Ingested"
    channel: Channel
    sender: str  # normalized
    message: InboundMessage


@dataclass(frozen=True)
class SentFrom:
    queued: Queued
    channel: Channel
    to: str  # normalized


class DialectCommands:
    """The Ledger's dialect commands (self is the Ledger)."""

    def channel_at(self, principal: Principal, kind: str, address: str, field: str) -> Channel:
        """The company's channel of this kind with this address (as normalized for the kind); a
        validation error on `field` when there is none, since the address came in a request body."""
        channel_kind = channel_kinds().get(kind)
        if channel_kind is None:
            raise ValidationFailed.single("kind", "unsupported_kind", f"no channel kind {kind!r}")
        normalized = normalize(channel_kind.address_kind, address, field, self.default_region)
        claim = self.find(ChannelAddress, ChannelAddress.id_for(principal.company_id, kind, normalized))
        if claim is None:
            raise ValidationFailed.single(
                field, "no_channel", f"{field}: the company has no {kind} channel with the address {normalized}"
            )
        return self.get_owned(Channel, UUID(claim.channel_id), principal.company_id)

    def receive_by_address(self, principal: Principal, kind: str, payload: BaseModel) -> Received:
        """A provider's inbound message in the kind's payload, posted with a company key: on the
        company's channel whose address is the message's `to`, deduplicated as its webhook is."""
        principal.require(*INTEGRATORS)
        [message] = channel_kinds()[kind].messages(payload)
        channel = self.channel_at(principal, kind, message.recipient, "to")
        return self._receive(channel, message)

    def receive_on_channel(
        self, principal: Principal, company_id: UUID, channel_id: UUID, kind: str, document: dict[str, object]
    ) -> Received:
        """A provider's inbound message on a named channel (of this kind) of the caller's company, posted
        with a company key; the document is the kind's payload (section 6), validated as its webhook's."""
        principal.require(*INTEGRATORS)
        if str(company_id) != principal.company_id:
            raise NotFound("no such company")
        channel = self.get_owned(Channel, channel_id, principal.company_id)
        if channel.kind != kind:
            raise ValidationFailed.single("channel_id", "wrong_kind", f"channel_id: not a {kind} channel")
        channel_kind = channel_kinds()[kind]
        [message] = channel_kind.messages(validate(channel_kind.payload_model, document))
        return self._receive(channel, message)

    def _receive(self, channel: Channel, message: InboundMessage) -> Received:
        kind = channel_kinds()[channel.kind]
        sender = normalize(kind.address_kind, message.sender, "from", self.default_region)
        return Received(self.ingest(channel, message), channel, sender, message)

    def send_from_address(
        self,
        principal: Principal,
        kind: str,
        from_address: str,
        to: str,
        body: str,
        attachments: list[str],
        message_type: str | None,
        idempotency_key: str | None,
    ) -> SentFrom:
        """An outbound message from the company's channel of this kind whose address is `from_address`."""
        principal.require(*SENDERS)
        channel = self.channel_at(principal, kind, from_address, "from")
        queued = self.send_to_address(principal, channel.id, to, body, attachments, message_type, idempotency_key)
        address_kind = channel_kinds()[channel.kind].address_kind
        return SentFrom(queued, channel, normalize(address_kind, to, "to", self.default_region))

    def send_as(
        self, principal: Principal, author_id: UUID, conversation_id: UUID, body: str, idempotency_key: str | None
    ) -> Queued:
        """A reply written by `author_id`, an admin or agent of the company, who is recorded as its
        author and actor. Writing as another user than the key's needs an admin key."""
        principal.require(*SENDERS)
        if str(author_id) != principal.user_id:
            principal.require("admin")
        author = self.get_owned(User, author_id, principal.company_id)
        if author.role not in SENDERS:
            raise ValidationFailed.single("author_id", "cannot_send", f"a user with role {author.role} sends nothing")
        as_author = Principal(company_id=principal.company_id, user_id=str(author.id), role=author.role)
        return self.send_to_conversation(as_author, conversation_id, body, [], idempotency_key)

    def import_intercom_conversation(self, principal: Principal, document: object) -> tuple[Channel, list["Ingested"]]:
        """An Intercom conversation posted with a company key (KBMS's importer), received on the company's
        first intercom channel exactly as that channel's webhook receives it."""
        principal.require(*INTEGRATORS)
        company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
        channels = (self.get_owned(Channel, UUID(channel_id), company.company_id) for channel_id in company.channel_ids)
        channel = next((channel for channel in channels if channel.kind == "intercom"), None)
        if channel is None:
            raise ValidationFailed.single(
                "channel", "no_intercom_channel", "the company has no intercom channel (POST /v1/channels)"
            )
        return channel, self.import_intercom(channel, document, principal.actor)
