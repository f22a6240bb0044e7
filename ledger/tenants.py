"""Tenants: companies, their users and keys, their channels, and who is calling."""

from dataclasses import dataclass
from uuid import UUID, uuid4

import orjson
from eventsourcing.utils import get_topic

from ledger.addresses import normalize
from ledger.channels import channel_kinds
from ledger.credentials import hash_key, new_api_key, new_webhook_secret
from ledger.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from ledger.tenancy import (
    HUMAN_ROLES,
    ApiKey,
    Channel,
    ChannelAddress,
    Company,
    Role,
    User,
    check_credentials,
    check_name,
)

SYSTEM = "system"
LEGACY_KEYS_PAGE = 1000
# Kinds whose webhook secret the provider chooses (Twilio signs with the account's auth token).
KINDS_WITH_PROVIDER_SECRET = ("twilio",)


@dataclass(frozen=True)
class Principal:
    company_id: str
    user_id: str
    role: Role

    @property
    def actor(self) -> str:
        return f"{'bot' if self.role == 'bot' else 'user'}:{self.user_id}"

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}; you are {self.role}")


@dataclass(frozen=True)
class CompanyCreated:
    company: Company
    admin_key: str
    position: int


class Tenants:
    """The Ledger's tenant commands (self is the Ledger)."""

    def create_company(self, name: str) -> CompanyCreated:
        company = Company.create(check_name(name), actor=SYSTEM)
        admin_key = new_api_key()
        admin = User.create(company.company_id, "Admin", "admin", SYSTEM, UUID(company.admin_user_id))
        bot = User.create(company.company_id, "AI assistant", "bot", SYSTEM, UUID(company.bot_user_id))
        key = ApiKey.issue(company.company_id, admin.id, hash_key(admin_key), SYSTEM)
        admin.add_key(key.id, SYSTEM)
        position = self.commit(company, admin, bot, key)
        return CompanyCreated(company, admin_key, position)

    def create_user(self, principal: Principal, name: str, role: Role) -> tuple[User, str, int]:
        principal.require("admin")
        check_name(name)
        if role not in HUMAN_ROLES:
            raise ValidationFailed.single("role", "invalid_role", f"role must be one of {', '.join(HUMAN_ROLES)}")
        return self.retry_on_conflict(lambda: self._add_user(principal, name, role))

    def _add_user(self, principal: Principal, name: str, role: Role) -> tuple[User, str, int]:
        company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
        api_key = new_api_key()
        user = User.create(principal.company_id, name, role, principal.actor)
        key = ApiKey.issue(principal.company_id, user.id, hash_key(api_key), principal.actor)
        user.add_key(key.id, principal.actor)
        company.add_user(user.id, principal.actor)
        return user, api_key, self.commit(user, key, company)

    def list_users(self, principal: Principal) -> list[User]:
        principal.require("admin", "agent")
        company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
        return [self.get_owned(User, UUID(user_id), principal.company_id) for user_id in company.user_ids]

    def issue_key(self, principal: Principal, user_id: UUID) -> tuple[str, int]:
        """A new key for a user of the company (its other keys keep working), returned once."""
        principal.require("admin")

        def issue() -> tuple[str, int]:
            user = self.get_owned(User, user_id, principal.company_id)
            api_key = new_api_key()
            key = ApiKey.issue(principal.company_id, user.id, hash_key(api_key), principal.actor)
            user.add_key(key.id, principal.actor)
            return api_key, self.commit(user, key)

        return self.retry_on_conflict(issue)

    def revoke_keys(self, principal: Principal, user_id: UUID) -> tuple[int, int]:
        """Revokes every live key of the user, effective on the next request (keys are read from the log on
        each one). The number revoked and the position (the log's head when none was live)."""
        principal.require("admin")

        def revoke() -> tuple[int, int]:
            user = self.get_owned(User, user_id, principal.company_id)
            keys = [self.find(ApiKey, UUID(key_id)) for key_id in self._key_ids_of(user)]
            live = [key for key in keys if key is not None and not key.revoked]
            for key in live:
                key.revoke(principal.actor)
            return len(live), self.commit(*live) if live else self.head_position()

        return self.retry_on_conflict(revoke)

    def _key_ids_of(self, user: User) -> list[str]:
        """The user's keys; for a user created before users listed them, also those the log shows issued to it."""
        if user.keys_tracked:
            return user.key_ids
        found, after = list(user.key_ids), 0
        topics = [get_topic(ApiKey.KeyIssued)]
        select = self.recorder.select_notifications
        while page := select(after, LEGACY_KEYS_PAGE, topics=topics, inclusive_of_start=False):
            issued = (self.mapper.to_domain_event(notification) for notification in page)
            found += [str(event.originator_id) for event in issued if event.user_id == str(user.id)]
            after = page[-1].id
        return found

    def authenticate(self, api_key: str) -> Principal:
        key = self.find(ApiKey, ApiKey.id_for(hash_key(api_key)))
        if key is None or key.revoked:
            raise Unauthorized("unknown or revoked API key")
        user = self.get_owned(User, UUID(key.user_id), key.company_id)
        return Principal(company_id=key.company_id, user_id=str(user.id), role=user.role)

    def create_channel(
        self,
        principal: Principal,
        kind: str,
        address: str,
        name: str | None,
        webhook_secret: str | None,
        credentials: dict[str, str] | None = None,
    ) -> tuple[Channel, str, int]:
        principal.require("admin")
        channel_kind = channel_kinds().get(kind)
        if channel_kind is None:
            supported = ", ".join(sorted(channel_kinds()))
            raise ValidationFailed.single("kind", "unsupported_kind", f"kind must be one of {supported}")
        check_provider_secret(kind, webhook_secret)
        credentials = check_credentials(kind, credentials or {})
        normalized = normalize(channel_kind.address_kind, address, "address", self.default_region)
        name = check_name(name, "name") if name is not None else f"{kind} {normalized}"
        secret = webhook_secret or new_webhook_secret()
        channel_id = uuid4()
        sealed = self.secret_box.seal(secret, context=str(channel_id))
        sealed_credentials = self.secret_box.seal(
            orjson.dumps(credentials).decode(), context=f"{channel_id}:credentials"
        )

        def add() -> int:
            """The channel, the claim of its address and its place in the company, together; a
            concurrent creation of the same address finds the claim on its retry."""
            if self.find(ChannelAddress, ChannelAddress.id_for(principal.company_id, kind, normalized)) is not None:
                raise Conflict(f"this company already has a {kind} channel for {normalized}")
            company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
            channel = Channel.create(
                channel_id, principal.company_id, kind, normalized, name, sealed, sealed_credentials, principal.actor
            )
            claim = ChannelAddress.claim(principal.company_id, kind, normalized, channel_id, principal.actor)
            company.add_channel(channel_id, principal.actor)
            return self.commit(channel, claim, company)

        position = self.retry_on_conflict(add)
        return self.get_channel(channel_id), secret, position

    def list_channels(self, principal: Principal) -> list[Channel]:
        principal.require("admin")
        company = self.get_owned(Company, UUID(principal.company_id), principal.company_id)
        return [self.get_owned(Channel, UUID(channel_id), principal.company_id) for channel_id in company.channel_ids]

    def read_channel(self, principal: Principal, channel_id: UUID) -> Channel:
        principal.require("admin")
        return self.get_owned(Channel, channel_id, principal.company_id)

    def rotate_secret(
        self, principal: Principal, channel_id: UUID, webhook_secret: str | None
    ) -> tuple[Channel, str, int]:
        """A new webhook secret, returned once (a Twilio channel takes the account's new auth token)."""
        principal.require("admin")
        channel = self.get_owned(Channel, channel_id, principal.company_id)
        check_provider_secret(channel.kind, webhook_secret)
        secret = webhook_secret or new_webhook_secret()
        channel.rotate_secret(self.secret_box.seal(secret, context=str(channel.id)), principal.actor)
        return channel, secret, self.commit(channel)

    def channel_credentials(self, channel: Channel) -> dict[str, str]:
        if channel.sealed_credentials is None:
            return {}
        return orjson.loads(self.secret_box.open(channel.sealed_credentials, context=f"{channel.id}:credentials"))

    def channel_secret(self, channel: Channel) -> str:
        return self.secret_box.open(channel.sealed_secret, context=str(channel.id))

    def get_channel(self, channel_id: UUID) -> Channel:
        channel = self.find(Channel, channel_id)
        if channel is None:
            raise NotFound("no such channel")
        return channel


def check_provider_secret(kind: str, webhook_secret: str | None) -> None:
    if kind in KINDS_WITH_PROVIDER_SECRET and not webhook_secret:
        raise ValidationFailed.single(
            "webhook_secret", "missing", f"a {kind} channel needs the provider's auth token as webhook_secret"
        )
