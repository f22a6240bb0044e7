"""Conversations: their messages, in and out, and each outbound message's delivery."""

from uuid import UUID

from ledger.base import LedgerAggregate
from ledger.delivery import attempt_failed, attempt_started, folded, new_send_state, send_settled
from ledger.ids import natural_id


class Conversation(LedgerAggregate):
    """Keyed by (company, channel, contact address), or for a conversation the provider keys itself by
    (company, provider, its id). Holds only what commands need:
    the next seq, the owner and the status. Messages live in the log and the timeline."""

    class Started(LedgerAggregate.Created):
        channel_id: str
        contact_id: str
        contact_address: str
        channel_address: str
        owner_id: str | None  # None: the unassigned queue (a conversation imported from a provider)

    class InboundMessageReceived(LedgerAggregate.Event):
        message_id: str
        seq: int
        contact_id: str
        provider_message_id: str
        message_type: str
        body: str
        preview: str
        attachments: list[str]
        sent_at: str | None
        sender: str | None = None  # the contact's address: known again after an erasure

        def apply(self, conversation: "Conversation") -> None:
            conversation.last_seq = self.seq
            if self.sender is not None:
                conversation.contact_address = self.sender

    class OutboundMessageImported(LedgerAggregate.Event):
        """An outbound message written by an agent in the provider's own tool (an Intercom admin's reply)
        and already delivered by the provider: part of the conversation, and never to be sent. Not an
        OutboundMessageQueued, so that nothing that sends (the outbox, the dispatcher) ever sees it."""

        message_id: str
        seq: int
        contact_id: str
        provider_message_id: str
        message_type: str
        body: str
        preview: str
        attachments: list[str]
        sent_at: str | None
        author: str | None  # the provider's author: "admin:814860", "bot:123"

        def apply(self, conversation: "Conversation") -> None:
            conversation.last_seq = self.seq

    class OwnerTransferred(LedgerAggregate.Event):
        from_owner_id: str | None
        to_owner_id: str | None  # None: the unassigned queue
        reason: str | None

        def apply(self, conversation: "Conversation") -> None:
            conversation.owner_id = self.to_owner_id

    class Closed(LedgerAggregate.Event):
        def apply(self, conversation: "Conversation") -> None:
            conversation.status = "closed"

    class Reopened(LedgerAggregate.Event):
        def apply(self, conversation: "Conversation") -> None:
            conversation.status = "open"

    class ReadMarked(LedgerAggregate.Event):
        user_id: str
        seq: int  # the last message the user has read

        def apply(self, conversation: "Conversation") -> None:
            conversation.read_markers[self.user_id] = self.seq

    class OutboundMessageQueued(LedgerAggregate.Event):
        message_id: str
        seq: int
        author_id: str
        channel_id: str
        contact_id: str
        to: str
        message_type: str
        body: str
        preview: str
        attachments: list[str]
        idempotency_key: str | None
        bot_intent: str | None = None  # the bot's replies: greeting, faq, fallback or handoff

        def apply(self, conversation: "Conversation") -> None:
            conversation.last_seq = self.seq
            if self.bot_intent == "fallback":
                conversation.bot_fallbacks += 1
            elif self.bot_intent is not None:
                conversation.bot_fallbacks = 0
            conversation.outbound[self.message_id] = new_send_state(self.timestamp.isoformat())

    class OutboundAttemptStarted(LedgerAggregate.Event):
        message_id: str
        attempt: int

        def apply(self, conversation: "Conversation") -> None:
            attempt_started(conversation.outbound[self.message_id], self.attempt, self.timestamp.isoformat())

    class OutboundAttemptFailed(LedgerAggregate.Event):
        message_id: str
        attempt: int
        http_status: int | None
        reason: str
        next_attempt_at: str

        def apply(self, conversation: "Conversation") -> None:
            attempt_failed(conversation.outbound[self.message_id], self.next_attempt_at)

    class OutboundMessageSent(LedgerAggregate.Event):
        message_id: str
        attempt: int
        http_status: int | None
        provider_message_id: str | None

        def apply(self, conversation: "Conversation") -> None:
            send_settled(conversation.outbound[self.message_id], "sent", self.provider_message_id)

    class OutboundMessageFailed(LedgerAggregate.Event):
        message_id: str
        attempt: int
        http_status: int | None
        reason: str

        def apply(self, conversation: "Conversation") -> None:
            send_settled(conversation.outbound[self.message_id], "failed")

    class DeliveryStatusReported(LedgerAggregate.Event):
        message_id: str
        provider_message_id: str
        status: str
        provider_status: str
        error_code: str | None

        def apply(self, conversation: "Conversation") -> None:
            message = conversation.outbound[self.message_id]
            message["reports"].append([self.provider_status, self.error_code])
            message["status"] = folded(message["status"], self.status)

    class AssistanceRequested(LedgerAggregate.Event):
        """A person was asked for help about this conversation (the request is its own stream)."""

        request_id: str
        topic: str
        description: str
        channel_id: str  # where the request was routed

    # 2: `outbound` was added; 3: `read_markers` and `bot_fallbacks`; 4: `participants` split into
    # `contact_address` (personal, sealed in snapshots) and `channel_address`; 5: outbound `queued_at`.
    # Older snapshots lack them.
    class_version = 5

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["outbound"] = {}

    @staticmethod
    def upcast_v2_v3(state: dict) -> None:
        state.update(read_markers={}, bot_fallbacks=0)

    @staticmethod
    def upcast_v3_v4(state: dict) -> None:
        state["contact_address"], state["channel_address"] = state.pop("participants")

    @staticmethod
    def upcast_v4_v5(state: dict) -> None:
        for message in state["outbound"].values():
            message["queued_at"] = None  # unknown: such a message is not checked against erasures

    def __init__(
        self,
        company_id: str,
        actor: str,
        channel_id: str,
        contact_id: str,
        contact_address: str,
        channel_address: str,
        owner_id: str | None,
    ) -> None:
        self.company_id = company_id
        self.channel_id = channel_id
        self.contact_id = contact_id
        self.contact_address = contact_address
        self.channel_address = channel_address
        self.owner_id = owner_id
        self.status = "open"
        self.last_seq = 0
        self.outbound: dict[str, dict] = {}  # message id -> its delivery state (see OutboundMessageQueued)
        self.read_markers: dict[str, int] = {}  # user id -> the seq they have read up to
        self.bot_fallbacks = 0  # the bot's fallback answers since it last understood

    @staticmethod
    def id_for(company_id: str, channel_id: str, address_key: str) -> UUID:
        """address_key: the keyed hash of the contact's address (Ledger.address_key), so that the id
        reveals no address and still finds the conversation after the address was erased."""
        return natural_id("conversation", company_id, channel_id, address_key)

    @staticmethod
    def id_for_thread(company_id: str, provider: str, external_id: str) -> UUID:
        """A conversation the provider keys itself (an Intercom conversation), whatever channel brings it."""
        return natural_id("provider-conversation", company_id, provider, external_id)

    @classmethod
    def start(
        cls,
        company_id: str,
        channel_id: str,
        contact_id: str,
        contact_address: str,
        address_key: str,
        channel_address: str,
        owner_id: str | None,
        actor: str,
        conversation_id: UUID | None = None,
    ) -> "Conversation":
        """Keyed by (company, channel, contact address), or by the given id (see id_for_thread)."""
        return cls._create(
            cls.Started,
            id=conversation_id or cls.id_for(company_id, channel_id, address_key),
            company_id=company_id,
            actor=actor,
            channel_id=channel_id,
            contact_id=contact_id,
            contact_address=contact_address,
            channel_address=channel_address,
            owner_id=owner_id,
        )

    def receive_inbound(
        self,
        message_id: UUID,
        provider_message_id: str,
        message_type: str,
        body: str,
        preview: str,
        attachments: list[str],
        sent_at: str | None,
        actor: str,
        sender: str | None = None,
    ) -> int:
        """Appends the message with the next seq; a concurrent append to the same
        conversation collides on the stream version, so seq never has gaps."""
        seq = self.last_seq + 1
        self._record(
            self.InboundMessageReceived,
            actor,
            message_id=str(message_id),
            seq=seq,
            contact_id=self.contact_id,
            provider_message_id=provider_message_id,
            message_type=message_type,
            body=body,
            preview=preview,
            attachments=attachments,
            sent_at=sent_at,
            sender=self.contact_address if sender is None else sender,
        )
        return seq

    def import_outbound(
        self,
        message_id: UUID,
        provider_message_id: str,
        message_type: str,
        body: str,
        preview: str,
        attachments: list[str],
        sent_at: str | None,
        author: str | None,
        actor: str,
    ) -> int:
        """Appends, with the next seq, an outbound message the provider already delivered."""
        seq = self.last_seq + 1
        self._record(
            self.OutboundMessageImported,
            actor,
            message_id=str(message_id),
            seq=seq,
            contact_id=self.contact_id,
            provider_message_id=provider_message_id,
            message_type=message_type,
            body=body,
            preview=preview,
            attachments=attachments,
            sent_at=sent_at,
            author=author,
        )
        return seq

    def transfer(self, to_owner_id: str | None, reason: str | None, actor: str) -> bool:
        if to_owner_id == self.owner_id:
            return False
        self._record(self.OwnerTransferred, actor, from_owner_id=self.owner_id, to_owner_id=to_owner_id, reason=reason)
        return True

    def close(self, actor: str) -> bool:
        if self.status == "closed":
            return False
        self._record(self.Closed, actor)
        return True

    def reopen(self, actor: str) -> bool:
        if self.status == "open":
            return False
        self._record(self.Reopened, actor)
        return True

    def mark_read(self, user_id: str, actor: str) -> bool:
        if self.read_markers.get(user_id, 0) >= self.last_seq:
            return False
        self._record(self.ReadMarked, actor, user_id=user_id, seq=self.last_seq)
        return True

    def request_assistance(self, request_id: UUID, topic: str, description: str, channel_id: str, actor: str) -> None:
        self._record(
            self.AssistanceRequested,
            actor,
            request_id=str(request_id),
            topic=topic,
            description=description,
            channel_id=channel_id,
        )

    def queue_outbound(
        self,
        message_id: UUID,
        author_id: str,
        message_type: str,
        body: str,
        preview: str,
        attachments: list[str],
        idempotency_key: str | None,
        actor: str,
        bot_intent: str | None = None,
        to: str | None = None,
    ) -> None:
        """To the conversation's contact address, or to `to` (the same address, given again by the
        sender when the one recorded was erased)."""
        self._record(
            self.OutboundMessageQueued,
            actor,
            message_id=str(message_id),
            seq=self.last_seq + 1,
            author_id=author_id,
            channel_id=self.channel_id,
            contact_id=self.contact_id,
            to=to or self.contact_address,
            message_type=message_type,
            body=body,
            preview=preview,
            attachments=attachments,
            idempotency_key=idempotency_key,
            bot_intent=bot_intent,
        )

    def start_attempt(self, message_id: str, actor: str) -> int:
        attempt = self.outbound[message_id]["attempts"] + 1
        self._record(self.OutboundAttemptStarted, actor, message_id=message_id, attempt=attempt)
        return attempt

    def fail_attempt(
        self, message_id: str, attempt: int, http_status: int | None, reason: str, next_attempt_at: str, actor: str
    ) -> None:
        self._record(
            self.OutboundAttemptFailed,
            actor,
            message_id=message_id,
            attempt=attempt,
            http_status=http_status,
            reason=reason,
            next_attempt_at=next_attempt_at,
        )

    def mark_sent(
        self, message_id: str, attempt: int, http_status: int | None, provider_message_id: str | None, actor: str
    ) -> None:
        self._record(
            self.OutboundMessageSent,
            actor,
            message_id=message_id,
            attempt=attempt,
            http_status=http_status,
            provider_message_id=provider_message_id,
        )

    def mark_failed(self, message_id: str, attempt: int, http_status: int | None, reason: str, actor: str) -> None:
        self._record(
            self.OutboundMessageFailed,
            actor,
            message_id=message_id,
            attempt=attempt,
            http_status=http_status,
            reason=reason,
        )

    def report_status(
        self,
        message_id: str,
        provider_message_id: str,
        status: str,
        provider_status: str,
        error_code: str | None,
        actor: str,
    ) -> bool:
        """Records a provider's status report unless it repeats one already recorded (the same
        status in the provider's words, the same error code); True when it was recorded."""
        if [provider_status, error_code] in self.outbound[message_id]["reports"]:
            return False
        self._record(
            self.DeliveryStatusReported,
            actor,
            message_id=message_id,
            provider_message_id=provider_message_id,
            status=status,
            provider_status=provider_status,
            error_code=error_code,
        )
        return True
