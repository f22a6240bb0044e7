"""Outbound sends: the commands that queue a message, that a dispatcher runs around each
provider call, and that record a provider's status callback. Mixed into the Ledger."""

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID, uuid4

from ledger.addresses import masked, normalize
from ledger.assistance import AssistanceRequest
from ledger.channels import WebhookRequest, channel_kinds
from ledger.channels._payloads import preview
from ledger.contacts import ERASED, Contact
from ledger.delivery import SendPolicy
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.ids import natural_id
from ledger.messaging import Conversation
from ledger.providers import ProviderAnswer
from ledger.receipts import OutboundReceipt, SendReceipt
from ledger.tenancy import Channel

DISPATCHER = "policy:dispatcher"
SENDERS = ("admin", "agent")
PHONE_KINDS = ("sms", "twilio")
# The streams whose sends the dispatcher makes, by the outbox's `source`: each keeps its sends' state in
# `outbound` (by message id) and records attempts and outcomes through the same methods.
SOURCES = {"conversation": Conversation, "assistance": AssistanceRequest}


@dataclass(frozen=True)
class Queued:
    message_id: str
    conversation_id: str
    status: str
    position: int
    created: bool  # False: the Idempotency-Key names a message queued before


@dataclass(frozen=True)
class NextStep:
    """What a dispatcher does with a due message: send it as `attempt`, wait, or drop it."""

    action: Literal["send", "wait", "done"]
    attempt: int = 0
    not_before: datetime | None = None
    started_at: datetime | None = None  # when the attempt to send was recorded


@dataclass(frozen=True)
class AttemptRecorded:
    status: str
    settled: bool  # sent or failed: nothing more for the dispatcher to do
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class StatusRecorded:
    message_id: str
    status: str  # the message's status after the report
    position: int
    recorded: bool  # False: an exact repeat of a report already recorded


@dataclass(frozen=True)
class SendingChannel:
    kind: str
    address: str
    credentials: dict[str, str]
    secret: str


class Sending:
    """The Ledger's outbound commands (self is the Ledger)."""

    def send_to_conversation(
        self, principal, conversation_id: UUID, body: str, attachments: list[str], idempotency_key: str | None
    ) -> Queued:
        principal.require(*SENDERS)

        def queue() -> Queued:
            if (earlier := self._queued_before(principal.company_id, idempotency_key)) is not None:
                return earlier
            conversation = self.get_owned(Conversation, conversation_id, principal.company_id)
            if conversation.contact_address == ERASED:
                raise Conflict(
                    "the contact's personal data was erased, its address with it: send with POST /v1/messages",
                    [{"field": "conversation_id", "issue": "contact_erased", "message": "the address was erased"}],
                )
            channel = self.get_owned(Channel, UUID(conversation.channel_id), principal.company_id)
            message_type = default_type(channel.kind, attachments)
            return self._queue(principal, conversation, None, body, attachments, message_type, idempotency_key)

        return self.retry_on_conflict(queue)

    def send_to_address(
        self,
        principal,
        channel_id: UUID,
        to: str,
        body: str,
        attachments: list[str],
        message_type: str | None,
        idempotency_key: str | None,
    ) -> Queued:
        """Finds the conversation with this address on the channel, or starts it (owned by
        the sender) with its contact."""
        principal.require(*SENDERS)
        channel = self.get_owned(Channel, channel_id, principal.company_id)
        address_kind = channel_kinds()[channel.kind].address_kind
        address = normalize(address_kind, to, "to", self.default_region)
        message_type = check_type(channel.kind, message_type, attachments)

        def queue() -> Queued:
            if (earlier := self._queued_before(principal.company_id, idempotency_key)) is not None:
                return earlier
            contact, conversation = self.participants(
                channel, address, address_kind, principal.actor, lambda: principal.user_id
            )
            return self._queue(
                principal, conversation, contact, body, attachments, message_type, idempotency_key, to=address
            )

        return self.retry_on_conflict(queue)

    def _queued_before(self, company_id: str, idempotency_key: str | None) -> Queued | None:
        if idempotency_key is None:
            return None
        receipt = self.find(SendReceipt, SendReceipt.id_for(company_id, idempotency_key))
        if receipt is None:
            return None
        conversation = self.get_owned(Conversation, UUID(receipt.conversation_id), company_id)
        status = conversation.outbound[receipt.message_id]["status"]
        return Queued(receipt.message_id, receipt.conversation_id, status, self.head_position(), created=False)

    def _queue(
        self, principal, conversation, contact, body, attachments, message_type, idempotency_key, to=None
    ) -> Queued:
        """The message, and the receipt of its Idempotency-Key, in one transaction."""
        message_id, receipt = self._add_outbound(
            conversation, principal.user_id, principal.actor, body, attachments, message_type, idempotency_key, to=to
        )
        position = self.commit(contact, conversation, receipt)
        return Queued(str(message_id), str(conversation.id), "queued", position, created=True)

    def _add_outbound(
        self,
        conversation: Conversation,
        author_id: str,
        actor: str,
        body: str,
        attachments: list[str],
        message_type: str,
        idempotency_key: str | None,
        bot_intent: str | None = None,
        to: str | None = None,
    ) -> tuple[UUID, SendReceipt | None]:
        """Queues an outbound message on the conversation; with a key, the receipt that claims it,
        to be saved in the same transaction. Its id derives from the key, so a replay finds it."""
        company_id = conversation.company_id
        message_id = natural_id("outbound", company_id, idempotency_key) if idempotency_key else uuid4()
        conversation.queue_outbound(
            message_id,
            author_id,
            message_type,
            body,
            preview(body),
            attachments,
            idempotency_key,
            actor,
            bot_intent,
            to=to,
        )
        receipt = None
        if idempotency_key:
            receipt = SendReceipt.claim(company_id, idempotency_key, message_id, conversation.id, actor)
        return message_id, receipt

    # -- the dispatcher's commands -------------------------------------------------------

    def begin_attempt(
        self, conversation_id: UUID, message_id: str, policy: SendPolicy, source: str = "conversation"
    ) -> NextStep:
        """Records the next attempt before the provider is called, unless the message is done,
        is waiting for its next attempt time, or has an attempt still presumed in flight.
        conversation_id: the id of the stream that records the send (see SOURCES)."""

        def decide() -> NextStep:
            conversation = self.find(SOURCES[source], conversation_id)
            message = conversation.outbound.get(message_id) if conversation is not None else None
            if message is None or message["settled"]:
                return NextStep("done")
            not_before = waiting_until(message, policy, datetime.now(UTC))
            if not_before is not None:
                return NextStep("wait", not_before=not_before)
            if self._erased_since_queued(conversation, message):
                reason = "the contact's personal data was erased before it was sent"
                conversation.mark_failed(message_id, message["attempts"], None, reason, DISPATCHER)
                self.commit(conversation)
                return NextStep("done")
            if message["attempts"] >= policy.max_started_attempts:
                reason = f"gave up after {message['attempts']} attempts, the last ones without an outcome"
                conversation.mark_failed(message_id, message["attempts"], None, reason, DISPATCHER)
                self.commit(conversation)
                return NextStep("done")
            attempt = conversation.start_attempt(message_id, DISPATCHER)
            self.commit(conversation)
            started_at = datetime.fromisoformat(conversation.outbound[message_id]["attempt_open_since"])
            return NextStep("send", attempt=attempt, started_at=started_at)

        return self.retry_on_conflict(decide)

    def _erased_since_queued(self, conversation: Conversation, message: dict) -> bool:
        """Its body and address were sealed under a key an erasure has destroyed since: nothing to send."""
        if not isinstance(conversation, Conversation):  # a stream with no contact
            return False
        contact = self.find(Contact, UUID(conversation.contact_id))
        erased_at = contact.erased_at if contact is not None else None
        return erased_at is not None and message["queued_at"] is not None and message["queued_at"] <= erased_at

    def record_outcome(
        self,
        conversation_id: UUID,
        message_id: str,
        attempt: int,
        answer: ProviderAnswer,
        policy: SendPolicy,
        source: str = "conversation",
    ) -> AttemptRecorded:
        """Records what the provider answered to an attempt: sent, failed for good, or failed
        with the time of the next attempt."""

        def record() -> AttemptRecorded:
            conversation = self.find(SOURCES[source], conversation_id)
            message = conversation.outbound[message_id]
            if message["settled"] or (answer.outcome != "sent" and message["attempts"] != attempt):
                # settled already, or a newer attempt owns the message
                return AttemptRecorded(message["status"], message["settled"])
            receipt, next_at = None, None
            if answer.outcome == "sent":
                conversation.mark_sent(message_id, attempt, answer.http_status, answer.provider_message_id, DISPATCHER)
                if answer.provider_message_id and isinstance(conversation, Conversation):
                    receipt = OutboundReceipt.claim(
                        conversation.company_id,
                        conversation.channel_id,
                        answer.provider_message_id,
                        message_id,
                        conversation.id,
                        DISPATCHER,
                    )
            elif answer.outcome == "retry" and attempt < policy.max_attempts:
                next_at = policy.next_attempt_at(datetime.now(UTC), attempt, answer.retry_after)
                reason = masked_for(conversation, answer.reason or "retryable failure")
                conversation.fail_attempt(
                    message_id, attempt, answer.http_status, reason, next_at.isoformat(), DISPATCHER
                )
            else:
                reason = masked_for(conversation, failure_reason(answer, attempt))
                conversation.mark_failed(message_id, attempt, answer.http_status, reason, DISPATCHER)
            self.commit(conversation, receipt)
            return AttemptRecorded(message["status"], message["settled"], next_at)

        return self.retry_on_conflict(record)

    def sending_channel(self, channel_id: UUID) -> SendingChannel:
        channel = self.get_channel(channel_id)
        return SendingChannel(
            channel.kind, channel.address, self.channel_credentials(channel), self.channel_secret(channel)
        )

    # -- status callbacks ------------------------------------------------------------

    def report_status(self, channel_id: UUID, request: WebhookRequest) -> StatusRecorded:
        """A provider's status callback: verified like the channel's webhooks, folded into the
        message's status by rank (it never regresses), an exact repeat recorded once."""
        channel = self.get_channel(channel_id)
        kind = channel_kinds()[channel.kind]
        kind.verify(self.channel_secret(channel), request)
        report = kind.parse_status(request)
        conversation_id, message_id = self._message_reported_on(channel, report.provider_message_id, request.url)
        actor = f"provider:{channel.id}"

        def record() -> StatusRecorded:
            conversation = self.get_owned(Conversation, conversation_id, channel.company_id)
            recorded = conversation.report_status(
                message_id,
                report.provider_message_id,
                report.status,
                report.provider_status or report.status,
                masked(report.error_code, conversation.contact_address),
                actor,
            )
            position = self.commit(conversation) if recorded else self.head_position()
            return StatusRecorded(message_id, conversation.outbound[message_id]["status"], position, recorded)

        return self.retry_on_conflict(record)

    def _message_reported_on(self, channel: Channel, provider_message_id: str, url: str) -> tuple[UUID, str]:
        """The message a callback is about: by the provider's id once the send is recorded; before
        that (a provider can call back before its answer is recorded) by the ids the dispatcher put
        in the StatusCallback URL the provider signed."""
        receipt = self.find(OutboundReceipt, OutboundReceipt.id_for(str(channel.id), provider_message_id))
        if receipt is not None:
            return UUID(receipt.conversation_id), receipt.message_id
        query = dict(parse_qsl(urlsplit(url).query))
        conversation = None
        if "conversation_id" in query and "message_id" in query:
            with suppress(ValueError):
                conversation = self.find(Conversation, UUID(query["conversation_id"]))
        if conversation is None or conversation.channel_id != str(channel.id):
            raise NotFound("no message sent on this channel has this provider message id")
        message = conversation.outbound.get(query["message_id"])
        if message is None or message.get("provider_message_id") not in (None, provider_message_id):
            raise NotFound("no message sent on this channel has this provider message id")
        return conversation.id, query["message_id"]


def status_url(base_url: str, channel_id: str, conversation_id: str, message_id: str) -> str:
    """Where a provider posts a message's status callbacks: the channel's status URL, naming the
    message so that a callback that overtakes the send's answer still finds it."""
    query = urlencode({"conversation_id": conversation_id, "message_id": message_id})
    return f"{base_url}/v1/webhooks/{channel_id}/status?{query}"


def waiting_until(message: dict, policy: SendPolicy, now: datetime) -> datetime | None:
    """When the message may be tried next, if not now: after the time a failed attempt set,
    or, while an attempt has no outcome, once it is no longer presumed in flight."""
    if message["attempt_open_since"] is not None:
        presumed_dead_at = datetime.fromisoformat(message["attempt_open_since"]) + timedelta(
            seconds=policy.lease_seconds
        )
        return presumed_dead_at if presumed_dead_at > now else None
    if message["not_before"] is not None:
        not_before = datetime.fromisoformat(message["not_before"])
        return not_before if not_before > now else None
    return None


def masked_for(stream, reason: str) -> str:
    """A provider's reason with the stream's contact address masked (a stream without a contact has none)."""
    return reason if stream.contact_address is None else masked(reason, stream.contact_address)


def failure_reason(answer: ProviderAnswer, attempt: int) -> str:
    reason = answer.reason or f"the provider answered {answer.http_status}"
    if answer.outcome == "retry":
        return f"gave up after {attempt} attempts; last: {reason}"
    return reason


def default_type(kind: str, attachments: list[str]) -> str:
    if kind in PHONE_KINDS:
        return "mms" if attachments else "sms"
    return "text"


def check_type(kind: str, message_type: str | None, attachments: list[str]) -> str:
    if message_type is None:
        return default_type(kind, attachments)
    if kind in PHONE_KINDS and message_type in ("sms", "mms"):
        return message_type
    if kind not in PHONE_KINDS and message_type == "text":
        return message_type
    allowed = "sms or mms" if kind in PHONE_KINDS else "text"
    raise ValidationFailed.single("type", "invalid_type", f"a {kind} message's type is {allowed}")
