"""Settings from the environment (pydantic-settings): one class, each service adds its own fields."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class KernelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5433/postgres"
    db_schema: str = Field("public", description="schema holding this service's tables")
    db_pool_size: int = 20
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_idempotence: bool = Field(default=False, description="idempotent producer: on for real Kafka, off for Tansu")
    topic_prefix: str = Field("", description="prepended to every topic name (tests isolate by it)")
    run_consumers: bool = Field(default=True, description="consume other services' topics (off: an API-only replica)")
    consumer_max_retries: int = 3
    relay_poll_interval: float = 0.5
    log_level: str = "INFO"

    @field_validator("db_schema")
    @classmethod
    def _schema_is_an_identifier(cls, value: str) -> str:
        if not _SCHEMA.match(value):
            raise ValueError("db_schema must be a lower-case SQL identifier")
        return value

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
