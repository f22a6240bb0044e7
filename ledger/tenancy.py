"""Tenants: companies, their users, API keys and channels."""

import unicodedata
from typing import Literal
from uuid import UUID, uuid4

from ledger.base import LedgerAggregate
from ledger.errors import ValidationFailed
from ledger.ids import natural_id

Role = Literal["admin", "agent", "auditor", "bot"]
HUMAN_ROLES = ("admin", "agent", "auditor")


def check_name(name: str, field: str = "name") -> str:
    """A display name: one line of printable text."""
    if any(unicodedata.category(character) == "Cc" for character in name):
        raise ValidationFailed.single(field, "control_character", f"{field} must not contain control characters")
    if not name.strip():
        raise ValidationFailed.single(field, "blank", f"{field} must not be blank")
    return name


class Company(LedgerAggregate):
    class Created(LedgerAggregate.Created):
        name: str
        admin_user_id: str
        bot_user_id: str

    class UserAdded(LedgerAggregate.Event):
        user_id: str

        def apply(self, company: "Company") -> None:
            company.user_ids.append(self.user_id)

    class ChannelAdded(LedgerAggregate.Event):
        channel_id: str

        def apply(self, company: "Company") -> None:
            company.channel_ids.append(self.channel_id)

    class RoutingRuleSet(LedgerAggregate.Event):
        topic: str
        channel_id: str
        to: str | None = None  # None: the channel's own address

        def apply(self, company: "Company") -> None:
            company.routing[self.topic] = {"channel_id": self.channel_id, "to": self.to}

    def __init__(self, company_id: str, actor: str, name: str, admin_user_id: str, bot_user_id: str) -> None:
        self.company_id = company_id
        self.name = name
        self.admin_user_id = admin_user_id
        self.bot_user_id = bot_user_id
        self.user_ids = [admin_user_id, bot_user_id]
        self.channel_ids: list[str] = []
        self.routing: dict[str, dict] = {}  # topic -> {channel_id, to}: where assistance requests go

    @classmethod
    def create(cls, name: str, actor: str) -> "Company":
        company_id, admin_id, bot_id = uuid4(), uuid4(), uuid4()
        return cls._create(
            cls.Created,
            id=company_id,
            company_id=str(company_id),
            actor=actor,
            name=name,
            admin_user_id=str(admin_id),
            bot_user_id=str(bot_id),
        )

    def add_user(self, user_id: UUID, actor: str) -> None:
        self._record(self.UserAdded, actor, user_id=str(user_id))

    def add_channel(self, channel_id: UUID, actor: str) -> None:
        self._record(self.ChannelAdded, actor, channel_id=str(channel_id))

    def set_routing_rule(self, topic: str, channel_id: str, to: str | None, actor: str) -> None:
        self._record(self.RoutingRuleSet, actor, topic=topic, channel_id=channel_id, to=to)


class User(LedgerAggregate):
    class Created(LedgerAggregate.Created):
        name: str
        role: str
        keys_tracked: bool = False  # False: created before KeyAdded existed, its first key is not listed

    class KeyAdded(LedgerAggregate.Event):
        key_id: str

        def apply(self, user: "User") -> None:
            user.key_ids.append(self.key_id)

    class AvailabilityChanged(LedgerAggregate.Event):
        available: bool

        def apply(self, user: "User") -> None:
            user.available = self.available

    def __init__(self, company_id: str, actor: str, name: str, role: Role, keys_tracked: bool = False) -> None:
        self.company_id = company_id
        self.name = name
        self.role = role
        self.available = False  # users start unavailable: handoffs go only to available ones
        self.keys_tracked = keys_tracked
        self.key_ids: list[str] = []  # the ApiKey ids issued to the user, revoked or not

    def add_key(self, key_id: UUID, actor: str) -> None:
        self._record(self.KeyAdded, actor, key_id=str(key_id))

    def set_availability(self, available: bool, actor: str) -> bool:
        if available == self.available:
            return False
        self._record(self.AvailabilityChanged, actor, available=available)
        return True

    @classmethod
    def create(cls, company_id: str, name: str, role: Role, actor: str, user_id: UUID | None = None) -> "User":
        return cls._create(
            cls.Created,
            id=user_id or uuid4(),
            company_id=company_id,
            actor=actor,
            name=name,
            role=role,
            keys_tracked=True,
        )


class ApiKey(LedgerAggregate):
    """Keyed by the hash of the key, so authenticating is one lookup by id."""

    class KeyIssued(LedgerAggregate.Created):
        user_id: str
        key_hash: str

    class KeyRevoked(LedgerAggregate.Event):
        def apply(self, key: "ApiKey") -> None:
            key.revoked = True

    def __init__(self, company_id: str, actor: str, user_id: str, key_hash: str) -> None:
        self.company_id = company_id
        self.user_id = user_id
        self.revoked = False

    @staticmethod
    def id_for(key_hash: str) -> UUID:
        return natural_id("api-key", key_hash)

    @classmethod
    def issue(cls, company_id: str, user_id: UUID, key_hash: str, actor: str) -> "ApiKey":
        return cls._create(
            cls.KeyIssued,
            id=cls.id_for(key_hash),
            company_id=company_id,
            actor=actor,
            user_id=str(user_id),
            key_hash=key_hash,
        )

    def revoke(self, actor: str) -> None:
        self._record(self.KeyRevoked, actor)


# The provider credentials each channel kind takes: required, optional.
CREDENTIALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twilio": (("account_sid",), ()),
    "sendgrid": (("api_key",), ()),
    "slack": (("webhook_url",), ()),
    "sms": ((), ("api_key",)),
    "email": ((), ("api_key",)),
    "whatsapp": ((), ("api_key",)),
}


def check_credentials(kind: str, credentials: dict[str, str]) -> dict[str, str]:
    required, optional = CREDENTIALS.get(kind, ((), ()))
    for name in credentials:
        if name not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise ValidationFailed.single(
                f"credentials.{name}", "unknown_credential", f"a {kind} channel takes these credentials: {allowed}"
            )
    for name in required:
        if not credentials.get(name, "").strip():
            raise ValidationFailed.single(
                f"credentials.{name}", "missing", f"a {kind} channel needs credentials.{name}"
            )
    if "webhook_url" in credentials and not credentials["webhook_url"].startswith(("https://", "http://")):
        raise ValidationFailed.single("credentials.webhook_url", "invalid_url", "webhook_url must be an http(s) URL")
    return credentials


class Channel(LedgerAggregate):
    class Created(LedgerAggregate.Created):
        kind: str
        address: str
        name: str
        sealed_secret: str
        sealed_credentials: str | None = None  # JSON of the provider credentials, sealed like the secret

    def __init__(
        self,
        company_id: str,
        actor: str,
        kind: str,
        address: str,
        name: str,
        sealed_secret: str,
        sealed_credentials: str | None = None,
    ) -> None:
        self.company_id = company_id
        self.kind = kind
        self.address = address
        self.name = name
        self.sealed_secret = sealed_secret
        self.sealed_credentials = sealed_credentials

    class SecretRotated(LedgerAggregate.Event):
        sealed_secret: str

        def apply(self, channel: "Channel") -> None:
            channel.sealed_secret = self.sealed_secret

    def rotate_secret(self, sealed_secret: str, actor: str) -> None:
        self._record(self.SecretRotated, actor, sealed_secret=sealed_secret)

    @classmethod
    def create(
        cls,
        channel_id: UUID,
        company_id: str,
        kind: str,
        address: str,
        name: str,
        sealed_secret: str,
        sealed_credentials: str | None,
        actor: str,
    ) -> "Channel":
        return cls._create(
            cls.Created,
            id=channel_id,
            company_id=company_id,
            actor=actor,
            kind=kind,
            address=address,
            name=name,
            sealed_secret=sealed_secret,
            sealed_credentials=sealed_credentials,
        )


class ChannelAddress(LedgerAggregate):
    """Claims (company, kind, address) for one channel: a second channel with the same kind
    and address collides on this id, in the same transaction that would create it."""

    class Claimed(LedgerAggregate.Created):
        channel_id: str

    def __init__(self, company_id: str, actor: str, channel_id: str) -> None:
        self.company_id = company_id
        self.channel_id = channel_id

    @staticmethod
    def id_for(company_id: str, kind: str, address: str) -> UUID:
        return natural_id("channel-address", company_id, kind, address)

    @classmethod
    def claim(cls, company_id: str, kind: str, address: str, channel_id: UUID, actor: str) -> "ChannelAddress":
        return cls._create(
            cls.Claimed,
            id=cls.id_for(company_id, kind, address),
            company_id=company_id,
            actor=actor,
            channel_id=str(channel_id),
        )
