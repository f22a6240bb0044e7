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
    batch_size: int = Field(default=500, validation_alias="LEDGER_PROJECTION_BATCH_SIZE")
    sweep_seconds: float = Field(default=2.0, validation_alias="LEDGER_SWEEP_SECONDS")
    db_pool_size: int = Field(default=10, validation_alias="LEDGER_DB_POOL_SIZE")
    db_timeout_seconds: int = Field(default=10, validation_alias="LEDGER_DB_TIMEOUT_SECONDS")
