"""Intercom: a conversation object (or the `notification_event` envelope of a webhook around one),
signed with X-Hub-Signature (HMAC-SHA1 of the raw body with the app's client secret).

A conversation becomes the messages of one ledger conversation keyed by Intercom's conversation
id: its opening message, then each conversation part with a body, in `created_at` order. Parts by
a user, lead or contact are inbound; parts by an admin, bot or team were written in Intercom and
delivered by it, so they are recorded as outbound and never sent. Internal notes, which the contact
never saw, are skipped. Only the fields read here are checked; the rest of Intercom's schema is
tolerated.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ledger.addresses import normalize_email
from ledger.channels import InboundMessage, StatusReport, Thread, WebhookRequest
from ledger.channels._payloads import html_to_text, load_json, preview, validate, verify_hmac
from ledger.errors import ValidationFailed

PROVIDER = "intercom"
MESSAGE_TYPE = "intercom"  # bodies are Intercom's HTML
MAX_PARTS = 500  # Intercom's API returns at most 500 parts of a conversation
LATEST_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
INBOUND_AUTHORS = ("user", "lead", "contact")
OUTBOUND_AUTHORS = ("admin", "bot", "team")
SKIPPED_PART_TYPES = ("note", "note_and_reopen")  # internal: the contact never saw them
# Intercom's ids are numbers or hex; no "/" (a message's receipt key is "<conversation id>/<its id>") and no spaces.
Id = Annotated[str, Field(min_length=1, max_length=190, pattern=r"^[^/\s]+$")]
UnixSeconds = Annotated[int, Field(ge=0, le=LATEST_UNIX_SECONDS, strict=True)]


class Tolerant(BaseModel):
    """Intercom sends ids as strings (some clients as numbers) and many more fields than are read."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class IntercomAuthor(Tolerant):
    type: str | None = Field(default=None, description=f"one of {', '.join(INBOUND_AUTHORS + OUTBOUND_AUTHORS)}")
    id: Id
    email: str | None = Field(default=None, description="the contact's address when the author is the contact")


class IntercomAttachment(Tolerant):
    name: str | None = None
    url: str | None = Field(default=None, description="listed as the message's attachment (else its name)")


class IntercomMessage(Tolerant):
    """The conversation's opening message (`conversation_message`, or `source` in newer API versions)."""

    body: str | None = Field(description="HTML, kept as the message's body")
    author: IntercomAuthor
    attachments: list[IntercomAttachment] | None = None


class IntercomPart(Tolerant):
    id: Id
    part_type: str | None = None
    body: str | None = None
    created_at: UnixSeconds | None = None
    author: IntercomAuthor | None = None
    attachments: list[IntercomAttachment] | None = None


class IntercomParts(Tolerant):
    conversation_parts: list[IntercomPart] | None = Field(default=None, max_length=MAX_PARTS)


class IntercomContact(Tolerant):
    id: Id
    email: str | None = None


class IntercomContacts(Tolerant):
    contacts: list[IntercomContact] | None = None


class IntercomConversation(Tolerant):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "conversation",
                    "id": "123456789",
                    "created_at": 1763805600,
                    "conversation_message": {
                        "type": "conversation",
                        "id": "403918330",
                        "body": "<p>Hi, my order is late</p>",
                        "author": {"type": "user", "id": "5f1a", "name": "Ann", "email": "ann@example.com"},
                        "attachments": [],
                    },
                    "conversation_parts": {
                        "type": "conversation_part.list",
                        "conversation_parts": [
                            {
                                "type": "conversation_part",
                                "id": "7001",
                                "part_type": "comment",
                                "body": "<p>Sorry! It ships today.</p>",
                                "created_at": 1763805700,
                                "author": {"type": "admin", "id": "814860", "name": "Bo"},
                            }
                        ],
                        "total_count": 1,
                    },
                }
            ]
        }
    )

    id: Id
    created_at: UnixSeconds = Field(description="unix seconds: the opening message's time")
    conversation_message: IntercomMessage | None = None
    source: IntercomMessage | None = Field(default=None, description="newer API versions' conversation_message")
    conversation_parts: IntercomParts | None = None
    contacts: IntercomContacts | None = None


class NotificationData(Tolerant):
    item: dict


class NotificationEvent(Tolerant):
    """An Intercom webhook: `{"type": "notification_event", "topic": ..., "data": {"item": <conversation>}}`."""

    type: str
    topic: str | None = None
    data: NotificationData


@dataclass(frozen=True)
class Authored:
    """One message of the conversation: the opening message or a part."""

    provider_message_id: str
    created_at: int
    author: IntercomAuthor
    body: str
    attachments: list[IntercomAttachment]


def conversation_messages(document: object) -> list[InboundMessage]:
    """The messages of a conversation document (or of its notification envelope), in created_at order,
    each with the conversation's contact as its sender. Raises ValidationFailed."""
    if isinstance(document, dict) and document.get("type") == "notification_event":
        document = validate(NotificationEvent, document).data.item
    conversation = validate(IntercomConversation, document)
    authored = sorted(messages_of(conversation), key=lambda message: message.created_at)  # stable: given order
    address, address_kind = contact_address(conversation, [message.author for message in authored])
    thread = Thread(PROVIDER, conversation.id)
    return [
        InboundMessage(
            provider_message_id=message.provider_message_id,
            sender=address,
            recipient=None,
            body=message.body,
            preview=preview(html_to_text(message.body)),
            message_type=MESSAGE_TYPE,
            attachments=[attachment.url or attachment.name or "" for attachment in message.attachments],
            sent_at=datetime.fromtimestamp(message.created_at, UTC),
            thread=thread,
            sender_kind=address_kind,
            direction="inbound" if author_type(message.author) in INBOUND_AUTHORS else "outbound",
            author=f"{author_type(message.author)}:{message.author.id}",
        )
        for message in authored
    ]


def messages_of(conversation: IntercomConversation) -> list[Authored]:
    """The opening message (keyed by the conversation's id, its time the conversation's), then each part
    with a body or attachments that is not an internal note; a part whose id came before is the same
    message delivered twice, and counts once."""
    opening = conversation.conversation_message or conversation.source
    if opening is None:
        raise ValidationFailed.single("conversation_message", "missing", "conversation_message is required")
    body, attachments = opening.body or "", opening.attachments or []
    messages = [Authored(conversation.id, conversation.created_at, opening.author, body, attachments)]
    parts = (conversation.conversation_parts.conversation_parts or []) if conversation.conversation_parts else []
    seen = {conversation.id}
    for index, part in enumerate(parts):
        if part.id in seen:
            continue
        seen.add(part.id)
        if (part.body or part.attachments) and part.part_type not in SKIPPED_PART_TYPES:
            created_at = conversation.created_at if part.created_at is None else part.created_at
            author = part_author(part, index)
            messages.append(Authored(part.id, created_at, author, part.body or "", part.attachments or []))
    return messages


def part_author(part: IntercomPart, index: int) -> IntercomAuthor:
    if part.author is None:
        field = f"conversation_parts.conversation_parts.{index}.author"
        raise ValidationFailed.single(field, "missing", "a conversation part with a body needs its author")
    return part.author


def author_type(author: IntercomAuthor) -> str:
    """An author of no stated type is the user's (the required subset of a conversation names none)."""
    kind = author.type or "user"
    if kind not in INBOUND_AUTHORS + OUTBOUND_AUTHORS:
        allowed = ", ".join(INBOUND_AUTHORS + OUTBOUND_AUTHORS)
        raise ValidationFailed.single("author.type", "unknown_author_type", f"author.type must be one of {allowed}")
    return kind


def contact_address(conversation: IntercomConversation, authors: list[IntercomAuthor]) -> tuple[str, str]:
    """The contact: the first user author, else the conversation's first contact. Its email when it
    has a valid one (so the same person on the email channel is the same contact), else
    `intercom:<Intercom's id>`."""
    people = [author for author in authors if author_type(author) in INBOUND_AUTHORS]
    listed = (conversation.contacts.contacts or []) if conversation.contacts else []
    candidates = [(person.id, person.email) for person in people] + [(person.id, person.email) for person in listed]
    if not candidates:
        raise ValidationFailed.single(
            "conversation_message.author", "no_contact", "the conversation names no user, lead or contact"
        )
    intercom_id, email = candidates[0]
    if email:
        try:
            return normalize_email(email, "author.email"), "email"
        except ValidationFailed:
            pass  # an address Intercom accepted and the ledger cannot use: the id stands for the contact
    return f"{PROVIDER}:{intercom_id}", "handle"


class IntercomKind:
    name = PROVIDER
    address_kind = "handle"  # the channel's address: the Intercom workspace, e.g. its app id
    acknowledgement = None

    def verify(self, secret: str, request: WebhookRequest) -> None:
        verify_hmac(secret, request, "x-hub-signature", "sha1")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        return conversation_messages(load_json(request))

    def parse_status(self, request: WebhookRequest) -> StatusReport:
        raise ValidationFailed.single(
            "channel", "inbound_only", "an intercom channel only receives conversations; it sends nothing"
        )


KIND = IntercomKind()
