"""Assistance requests: a topic routed to one of the company's channels and sent there by the
dispatcher like any outbound message (the same recorded attempts, retries, backoff and
Idempotency-Key). Each request is its own stream; the routing rules are events of the Company.

Mixed into the Ledger."""

import re
from dataclasses import dataclass
from uuid import UUID, uuid4

from ledger.addresses import normalize
from ledger.base import LedgerAggregate
from ledger.channels import channel_kinds
from ledger.delivery import attempt_failed, attempt_started, new_send_state, send_settled
from ledger.errors import ValidationFailed
from ledger.ids import natural_id
from ledger.messaging import Conversation
from ledger.providers import providers
from ledger.tenancy import Channel, Company

TOPIC = re.compile(r"[a-z0-9_-]{1,64}")
REQUESTERS = ("admin", "agent", "bot")
# A topic without a rule goes to the company's first channel (in creation order) of the first of these
# kinds it has.
DEFAULT_ROUTES = {"sales": ("slack",), "pricing": ("email", "sendgrid")}
EMAIL_KINDS = ("email", "sendgrid")


class AssistanceRequest(LedgerAggregate):
    """One request for a person's help, and its one send. Its send state has the shape a
    conversation keeps per outbound message, so the dispatcher's commands serve both."""

    class Requested(LedgerAggregate.Created):
        topic: str
        description: str
        channel_id: str
        to: str
        body: str  # the text sent, as the channel's kind shows it
        conversation_id: str | None
        idempotency_key: str | None

        def apply(self, request: "AssistanceRequest") -> None:
            request.delivery = new_send_state(self.timestamp.isoformat())

    class AttemptStarted(LedgerAggregate.Event):
        attempt: int

        def apply(self, request: "AssistanceRequest") -> None:
            attempt_started(request.delivery, self.attempt, self.timestamp.isoformat())

    class AttemptFailed(LedgerAggregate.Event):
        attempt: int
        http_status: int | None
        reason: str
        next_attempt_at: str

        def apply(self, request: "AssistanceRequest") -> None:
            attempt_failed(request.delivery, self.next_attempt_at)

    class Sent(LedgerAggregate.Event):
        attempt: int
        http_status: int | None
        provider_message_id: str | None

        def apply(self, request: "AssistanceRequest") -> None:
            send_settled(request.delivery, "sent", self.provider_message_id)

    class Failed(LedgerAggregate.Event):
        attempt: int
        http_status: int | None
        reason: str

        def apply(self, request: "AssistanceRequest") -> None:
            send_settled(request.delivery, "failed")

    contact_address: str | None = None  # no contact's address to mask in a provider's reasons

    def __init__(
        self,
        company_id: str,
        actor: str,
        topic: str,
        description: str,
        channel_id: str,
        to: str,
        body: str,
        conversation_id: str | None,
        idempotency_key: str | None,
    ) -> None:
        self.company_id = company_id
        self.topic = topic
        self.description = description
        self.channel_id = channel_id
        self.conversation_id = conversation_id
        self.delivery: dict = {}

    @staticmethod
    def id_for(company_id: str, idempotency_key: str) -> UUID:
        return natural_id("assistance-request", company_id, idempotency_key)

    @classmethod
    def request(cls, request_id: UUID, company_id: str, actor: str, **fields) -> "AssistanceRequest":
        return cls._create(cls.Requested, id=request_id, company_id=company_id, actor=actor, **fields)

    @property
    def outbound(self) -> dict[str, dict]:
        """The send, keyed like a conversation's outbound messages (by the id the dispatcher names it by)."""
        return {str(self.id): self.delivery}

    @property
    def status(self) -> str:
        return public_status(self.delivery["status"])

    # The dispatcher's commands call these with the same arguments as a conversation's.

    def start_attempt(self, message_id: str, actor: str) -> int:
        attempt = self.delivery["attempts"] + 1
        self._record(self.AttemptStarted, actor, attempt=attempt)
        return attempt

    def fail_attempt(
        self, message_id: str, attempt: int, http_status: int | None, reason: str, next_attempt_at: str, actor: str
    ) -> None:
        self._record(
            self.AttemptFailed,
            actor,
            attempt=attempt,
            http_status=http_status,
            reason=reason,
            next_attempt_at=next_attempt_at,
        )

    def mark_sent(
        self, message_id: str, attempt: int, http_status: int | None, provider_message_id: str | None, actor: str
    ) -> None:
        self._record(
            self.Sent, actor, attempt=attempt, http_status=http_status, provider_message_id=provider_message_id
        )

    def mark_failed(self, message_id: str, attempt: int, http_status: int | None, reason: str, actor: str) -> None:
        self._record(self.Failed, actor, attempt=attempt, http_status=http_status, reason=reason)


@dataclass(frozen=True)
class AssistanceQueued:
    request_id: str
    topic: str
    description: str
    channel_id: str
    status: str
    position: int
    created: bool  # False: the Idempotency-Key names a request made before


@dataclass(frozen=True)
class RoutingRule:
    topic: str
    channel_id: str
    to: str  # where the channel sends the requests
    position: int


class AssistanceCommands:
    """The Ledger's assistance and routing commands (self is the Ledger)."""

    def request_assistance(
        self,
        principal,
        topic: str,
        description: str,
        conversation_id: UUID | None,
        idempotency_key: str | None,
    ) -> AssistanceQueued:
        principal.require(*REQUESTERS)
        topic = check_topic(topic)
        if not description.strip():
            raise ValidationFailed.single("description", "blank", "description must not be blank")
        company_id = principal.company_id

        def request() -> AssistanceQueued:
            request_id = AssistanceRequest.id_for(company_id, idempotency_key) if idempotency_key else uuid4()
            if idempotency_key and (earlier := self.find(AssistanceRequest, request_id)) is not None:
                return queued_answer(earlier, self.head_position(), created=False)
            conversation = None
            if conversation_id is not None:
                conversation = self.get_owned(Conversation, conversation_id, company_id)
            channel, to = self.route_topic(self.get_owned(Company, UUID(company_id), company_id), topic)
            assistance = AssistanceRequest.request(
                request_id,
                company_id,
                principal.actor,
                topic=topic,
                description=description,
                channel_id=str(channel.id),
                to=to,
                body=assistance_text(channel.kind, topic, description),
                conversation_id=None if conversation is None else str(conversation.id),
                idempotency_key=idempotency_key,
            )
            if conversation is not None:
                conversation.request_assistance(request_id, topic, description, str(channel.id), principal.actor)
            return queued_answer(assistance, self.commit(assistance, conversation), created=True)

        return self.retry_on_conflict(request)

    def route_topic(self, company: Company, topic: str) -> tuple[Channel, str]:
        """The channel a topic goes to and the address it sends to there: the company's rule, else the default."""
        if (rule := company.routing.get(topic)) is not None:
            channel = self.get_owned(Channel, UUID(rule["channel_id"]), company.company_id)
            return channel, rule["to"] or channel.address
        kinds = DEFAULT_ROUTES.get(topic)
        if kinds is None:
            raise ValidationFailed.single(
                "topic", "unrouted_topic", f"no routing rule for topic {topic}: set one with PUT /v1/routing/topics/"
            )
        for kind in kinds:
            for channel_id in company.channel_ids:
                channel = self.get_owned(Channel, UUID(channel_id), company.company_id)
                if channel.kind == kind:
                    return channel, channel.address
        raise ValidationFailed.single(
            "topic",
            "no_default_channel",
            f"topic {topic} goes to the company's {' or '.join(kinds)} channel when no rule is set, and it has none",
        )

    def set_routing_rule(self, principal, topic: str, channel_id: UUID, to: str | None) -> RoutingRule:
        principal.require("admin")
        topic = check_topic(topic)
        channel = self.get_owned(Channel, channel_id, principal.company_id)
        if channel.kind not in providers():
            raise ValidationFailed.single("channel_id", "cannot_send", f"a {channel.kind} channel cannot send")
        if to is not None:
            to = normalize(channel_kinds()[channel.kind].address_kind, to, "to", self.default_region)

        def set_rule() -> RoutingRule:
            company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
            rule = {"channel_id": str(channel.id), "to": to}
            position = self.head_position()
            if company.routing.get(topic) != rule:  # setting the same rule again records nothing
                company.set_routing_rule(topic, str(channel.id), to, principal.actor)
                position = self.commit(company)
            return RoutingRule(topic, str(channel.id), to or channel.address, position)

        return self.retry_on_conflict(set_rule)


def check_topic(topic: str) -> str:
    if not TOPIC.fullmatch(topic):
        raise ValidationFailed.single(
            "topic", "invalid_topic", "a topic is 1 to 64 lower-case letters, digits, dashes or underscores"
        )
    return topic


def assistance_text(kind: str, topic: str, description: str) -> str:
    """An email's first line is its subject (the SendGrid adapter makes it so); other kinds get one line."""
    if kind in EMAIL_KINDS:
        return f"Assistance requested: {topic}\n\n{description}"
    return f"[{topic}] {description}"


def public_status(status: str) -> str:
    """queued until the send settles (an attempt in flight is still queued), then sent or failed."""
    return status if status in ("sent", "failed") else "queued"


def queued_answer(request: AssistanceRequest, position: int, created: bool) -> AssistanceQueued:
    return AssistanceQueued(
        str(request.id), request.topic, request.description, request.channel_id, request.status, position, created
    )
