"""The ledger application: every command, and the one write path to the event store."""

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from ledger.addresses import normalize
from ledger.assistance import AssistanceCommands
from ledger.auditing import Auditing
from ledger.base import LedgerAggregate
from ledger.bot import BotCommands
from ledger.channels import Acknowledgement, InboundMessage, WebhookRequest, channel_kinds
from ledger.contact_commands import ContactCommands
from ledger.contacts import Contact
from ledger.credentials import SecretBox
from ledger.dialect_commands import DialectCommands
from ledger.errors import Contended, NotFound, ValidationFailed
from ledger.handling import Handling
from ledger.ids import natural_id
from ledger.inbound import Ingested, ProviderConversations
from ledger.messaging import Conversation
from ledger.personal import Keyring, SealingMapper
from ledger.receipts import Receipt
from ledger.recorder import KeyDestroyed, VersionConflict
from ledger.sending import Sending
from ledger.tenancy import Channel, Company
from ledger.tenants import Tenants
from ledger.validation import utc_iso

log = logging.getLogger(__name__)
A = TypeVar("A", bound=LedgerAggregate)
T = TypeVar("T")
CONFLICT_RETRY_SECONDS = 5.0
SNAPSHOT_INTERVAL = 100
LARGE_BODY_CHARACTERS = 64 * 1024
SNAPSHOTTED = (Conversation,)  # the only kind `commit` snapshots; any other is read from its events alone


@dataclass(frozen=True)
class WebhookReceived:
    messages: list[Ingested]
    acknowledgement: Acknowledgement | None  # what the provider expects back instead of JSON

    @property
    def deduplicated(self) -> bool:
        return all(message.deduplicated for message in self.messages)

    @property
    def position(self) -> int:
        return max(message.position for message in self.messages)


def _contended(state: RetryCallState) -> None:
    raise Contended("too many concurrent writes to the same records; retry")


class Ledger(
    Tenants,
    Sending,
    Handling,
    BotCommands,
    Auditing,
    ContactCommands,
    AssistanceCommands,
    DialectCommands,
    ProviderConversations,
    Application[UUID],
):
    name = "ledger"
    is_snapshotting_enabled = True

    def __init__(
        self, env: dict[str, str], secret_box: SecretBox, default_region: str = "US", write_budget_seconds: float = 10
    ) -> None:
        # No aggregate cache: a cached aggregate would keep the personal data an erasure destroyed.
        super().__init__({**env, "AGGREGATE_CACHE_MAXSIZE": ""})
        self.secret_box = secret_box
        self.keyring = Keyring(self.recorder.datastore, secret_box)
        self.mapper.keyring = self.keyring
        self.default_region = default_region
        self.recorder.set_write_budget(write_budget_seconds)
        # Called with the position after every commit: the runtime wakes the projectors here,
        # so a write from a route, a worker or a policy wakes them alike.
        self.commit_listeners: list[Callable[[int], None]] = []

    def construct_mapper(self) -> SealingMapper:
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=SealingMapper)

    def address_key(self, address: str) -> str:
        """The keyed hash that stands for a normalized address in stream ids."""
        return self.secret_box.digest(address, "address")

    # -- the write path -------------------------------------------------------------

    def commit(self, *aggregates: LedgerAggregate | None) -> int:
        """Appends the pending events of the aggregates in one transaction and returns
        the log position of the last one. Every command writes through here."""
        try:
            recordings = self.save(*aggregates)
        except KeyDestroyed as destroyed:
            self.keyring.forget(destroyed.contact_id)  # the command's retry seals under a new key
            raise
        self._snapshot_long_conversations(recordings)
        position = recordings[-1].notification.id
        for listener in self.commit_listeners:
            listener(position)
        return position

    def _snapshot_long_conversations(self, recordings: list) -> None:
        """Best effort, after the commit: a failed snapshot only makes the next load longer.
        A conversation is snapshotted every SNAPSHOT_INTERVAL events, and after a large
        message, so that the next command on it does not read that message back."""
        for recording in recordings:
            event = recording.domain_event
            if not isinstance(event, Conversation.Event):
                continue
            large = len(getattr(event, "body", "")) > LARGE_BODY_CHARACTERS
            if large or event.originator_version % SNAPSHOT_INTERVAL == 0:
                try:
                    with self.keyring.fresh():  # decoded and sealed again under the same keys
                        self.take_snapshot(event.originator_id, version=event.originator_version)
                except OperationalError as error:
                    log.warning("snapshot of %s skipped: %s", event.originator_id, error)

    def retry_on_conflict(self, command: Callable[[], T]) -> T:
        """Runs a read-decide-commit command again when a concurrent writer took one of its
        stream versions first (optimistic concurrency), with jittered backoff, for a while.
        Any other integrity error is a bug and propagates at once."""
        retrying = Retrying(
            retry=retry_if_exception_type(VersionConflict),
            wait=wait_random_exponential(multiplier=0.001, max=0.1),
            stop=stop_after_delay(CONFLICT_RETRY_SECONDS),
            retry_error_callback=_contended,
        )
        return retrying(command)

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def find(self, aggregate_class: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate, from its latest snapshot and the events after it; an aggregate of a kind that
        is never snapshotted from its events alone, without asking the snapshot table first."""
        if aggregate_class not in SNAPSHOTTED:
            aggregate = project_aggregate(None, self.events.get(aggregate_id))
        else:
            try:
                aggregate = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
        return aggregate if isinstance(aggregate, aggregate_class) else None

    def get_owned(self, aggregate_class: type[A], aggregate_id: UUID, company_id: str) -> A:
        """The aggregate if it exists and belongs to the company; foreign ids are not found."""
        aggregate = self.find(aggregate_class, aggregate_id)
        if aggregate is None or aggregate.company_id != company_id:
            raise NotFound(f"no such {aggregate_class.__name__.lower()}")
        return aggregate

    # -- inbound messages ------------------------------------------------------------

    def receive_webhook(self, channel_id: UUID, request: WebhookRequest) -> WebhookReceived:
        """A provider's webhook: the channel's signature verified, every message in it
        appended exactly once."""
        channel = self.get_channel(channel_id)
        kind = channel_kinds()[channel.kind]
        kind.verify(self.channel_secret(channel), request)
        parsed = kind.parse(request)
        if parsed and parsed[0].thread is not None:  # a whole provider-keyed conversation (Intercom)
            return WebhookReceived(self.receive_thread(channel, parsed, f"provider:{channel.id}"), kind.acknowledgement)
        return WebhookReceived([self.ingest(channel, message) for message in parsed], kind.acknowledgement)

    def ingest(self, channel: Channel, message: InboundMessage) -> Ingested:
        """Appends one inbound message exactly once.

        The receipt, the message and (when new) the conversation and contact are saved in
        one transaction. A concurrent duplicate collides on the receipt's primary key; a
        concurrent message to the same conversation collides on its version. Either way
        the loser re-reads and either answers with the original ids or retries."""
        kind = channel_kinds()[channel.kind]
        sender = normalize(kind.address_kind, message.sender, "from", self.default_region)
        if message.recipient is not None:
            recipient = normalize(kind.address_kind, message.recipient, "to", self.default_region)
            if recipient != channel.address and not self._sent_to(channel, kind.address_kind, message.recipients):
                raise ValidationFailed.single("to", "wrong_recipient", "to is not this channel's address")
        receipt_id = Receipt.id_for(channel.company_id, str(channel.id), message.provider_message_id)
        return self.retry_on_conflict(
            lambda: self._ingest_once(channel, kind.address_kind, sender, message, receipt_id)
        )

    def _sent_to(self, channel: Channel, address_kind: str, others: list[str]) -> bool:
        """Whether the channel's address is one of an email's other recipients (those that are addresses)."""
        for other in others:
            with suppress(ValidationFailed):
                if normalize(address_kind, other, "to", self.default_region) == channel.address:
                    return True
        return False

    def participants(
        self,
        channel: Channel,
        address: str,
        address_kind: str,
        actor: str,
        owner_id: Callable[[], str | None],
        conversation_id: UUID | None = None,
    ) -> tuple[Contact, Conversation]:
        """The contact with this address and its conversation on the channel (or the conversation with
        that id: one a provider keys, see Conversation.id_for_thread), each found or started (a new
        conversation owned by `owner_id()`). A contact found learns the address again after an
        erasure. Both are keyed by the address's keyed hash, so an erased address finds them still."""
        company_id, address_key = channel.company_id, self.address_key(address)
        contact = self.find(Contact, Contact.id_for(company_id, address_key))
        if contact is None:
            contact = Contact.create(company_id, address, address_key, address_kind, actor)
        else:
            contact.add_address(address, address_kind, actor)
        conversation_id = conversation_id or Conversation.id_for(company_id, str(channel.id), address_key)
        conversation = self.find(Conversation, conversation_id)
        if conversation is None:
            conversation = Conversation.start(
                company_id,
                str(channel.id),
                str(contact.id),
                address,
                address_key,
                channel.address,
                owner_id(),
                actor,
                conversation_id,
            )
        return contact, conversation

    def _ingest_once(
        self, channel: Channel, address_kind: str, sender: str, message: InboundMessage, receipt_id: UUID
    ) -> Ingested:
        """Appends first, reads the receipt only when the append collides: a duplicate collides on the
        receipt's id, so the common case, a new message, costs no read of a receipt that is not there."""
        try:
            return self._append_inbound(channel, address_kind, sender, message, receipt_id)
        except VersionConflict:
            receipt = self.find(Receipt, receipt_id)
            if receipt is None:
                raise  # another stream's version was taken: retried
        return Ingested(receipt.message_id, receipt.conversation_id, receipt.contact_id, self.head_position(), True)

    def _append_inbound(
        self, channel: Channel, address_kind: str, sender: str, message: InboundMessage, receipt_id: UUID
    ) -> Ingested:
        company_id, channel_id, actor = channel.company_id, str(channel.id), f"provider:{channel.id}"
        contact, conversation = self.participants(
            channel,
            sender,
            address_kind,
            actor,
            lambda: self.get_owned(Company, UUID(company_id), company_id).bot_user_id,
        )
        conversation.reopen(actor)  # a closed conversation is back in its owner's queue
        contact_id = contact.id
        message_id = natural_id("message", receipt_id)
        conversation.receive_inbound(
            message_id,
            message.provider_message_id,
            message.message_type,
            message.body,
            message.preview,
            message.attachments,
            utc_iso(message.sent_at),
            actor,
            sender=sender,
        )
        receipt = Receipt.claim(
            company_id, channel_id, message.provider_message_id, message_id, conversation.id, contact_id, actor
        )
        position = self.commit(contact, conversation, receipt)
        return Ingested(str(message_id), str(conversation.id), str(contact_id), position, False)
