"""Configuration, read from the environment at start-up (never at import time)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    data_dir: Path = Field(default=Path(".ledger"), validation_alias="LEDGER_DATA_DIR")
    admin_token: str | None = Field(default=None, validation_alias="LEDGER_ADMIN_TOKEN")
    secret_key: str | None = Field(default=None, validation_alias="LEDGER_SECRET_KEY")
    public_url: str | None = Field(default=None, validation_alias="LEDGER_PUBLIC_URL")
    default_region: str = Field(default="US", validation_alias="LEDGER_DEFAULT_REGION")
    queue_name: str = Field(default="ledger", validation_alias="LEDGER_QUEUE")
    max_body_bytes: int = Field(default=1024 * 1024, validation_alias="LEDGER_MAX_BODY_BYTES")
    read_wait_seconds: float = Field(default=5.0, validation_alias="LEDGER_READ_WAIT_SECONDS")
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, validation_alias="LEDGER_SSE_HEARTBEAT_SECONDS")
    batch_size: int = Field(default=500, validation_alias="LEDGER_PROJECTION_BATCH_SIZE")
    sweep_seconds: float = Field(default=2.0, validation_alias="LEDGER_SWEEP_SECONDS")
    db_pool_size: int = Field(default=10, validation_alias="LEDGER_DB_POOL_SIZE")
    db_timeout_seconds: int = Field(default=10, validation_alias="LEDGER_DB_TIMEOUT_SECONDS")
    send_timeout_seconds: float = Field(default=10.0, gt=0, validation_alias="LEDGER_SEND_TIMEOUT_SECONDS")
    send_backoff_seconds: float = Field(default=1.0, ge=0, validation_alias="LEDGER_SEND_BACKOFF_SECONDS")
    send_max_attempts: int = Field(default=5, ge=1, validation_alias="LEDGER_SEND_MAX_ATTEMPTS")
    dispatch_concurrency: int = Field(default=8, ge=1, validation_alias="LEDGER_DISPATCH_CONCURRENCY")
    dispatch_poll_seconds: float = Field(default=0.2, gt=0, validation_alias="LEDGER_DISPATCH_POLL_SECONDS")
    policies: str = Field(
        default="bot,assignment,extraction",
        validation_alias="LEDGER_POLICIES",
        description="the policies this process runs, comma-separated (bot, assignment, extraction); empty: none",
    )
    provider_url_twilio: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_TWILIO")
    provider_url_sendgrid: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_SENDGRID")
    provider_url_slack: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_SLACK")
    provider_url_sms: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_SMS")
    provider_url_email: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_EMAIL")
    provider_url_whatsapp: str | None = Field(default=None, validation_alias="LEDGER_PROVIDER_URL_WHATSAPP")

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
