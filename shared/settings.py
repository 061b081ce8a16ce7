"""Settings from the environment (pydantic-settings): one class, each service adds its own fields."""

from __future__ import annotations

import re
import ssl
from typing import Literal, Self, TypedDict

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class KafkaSecurity(TypedDict):
    """The keyword arguments every aiokafka client (producer, consumer, admin) takes for authentication."""

    security_protocol: str
    sasl_mechanism: str
    sasl_plain_username: str | None
    sasl_plain_password: str | None
    ssl_context: ssl.SSLContext | None


class KernelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5433/postgres"
    db_schema: str = Field("public", description="schema holding this service's tables")
    db_pool_size: int = 20
    db_connect_timeout: float = Field(5, gt=0, description="seconds to open a database connection")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka's idempotent producer: a retried send is never written twice, nor out of order. Tansu (make run's
    # fallback without Java) does not implement it: the devstack turns it off there (KAFKA_IDEMPOTENCE=false)
    kafka_idempotence: bool = Field(default=True, description="idempotent producer (off only for Tansu)")
    # off (PLAINTEXT) for the local broker, which has no SASL; compose runs Kafka with SASL/SCRAM and ACLs
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(None, description="this service's Kafka principal (SASL protocols)")
    kafka_sasl_password: SecretStr | None = Field(None, description="its password: never logged or shown")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for SSL/SASL_SSL (default: the system's)")
    topic_prefix: str = Field("", description="prepended to every topic name (tests isolate by it)")
    run_consumers: bool = Field(default=True, description="consume other services' topics (off: an API-only replica)")
    # how soon a dead consumer is noticed and a new one is given its partitions. Kafka refuses a session under its
    # group.min.session.timeout.ms (6 s by default): 10 s, as compose. Tansu completes a join after half the
    # session timeout and drops a member that missed it: the devstack sets 3 s and 500 ms there, which brings a
    # restarted service back in seconds (and which Kafka would refuse)
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000, le=300_000)
    kafka_heartbeat_interval_ms: int = Field(1_000, ge=100)
    consumer_max_retries: int = 3
    consumer_group: str | None = Field(
        None, description="the Kafka consumer group (default: the topic prefix and the service's name)"
    )
    consumer_drain_seconds: float = Field(
        0, ge=0, le=30, description="on stop, seconds the consumer reads on after the relay stopped (make run: 2)"
    )
    relay_poll_interval: float = 0.5
    relay_verify_interval: float = Field(
        10.0, gt=0, description="seconds between checks, while idle, that the broker still holds what it acknowledged"
    )
    read_after_timeout: float = Field(
        5.0, ge=0, le=60, description="seconds a read given position tokens waits for them before 409 not_caught_up"
    )
    log_level: str = "INFO"
    # who may call: every service with an HTTP API verifies bearer tokens; there is no setting that turns it off
    auth_jwks: str | None = Field(None, description="the token issuer's public keys: a JWKS file path or https URL")
    auth_issuer: str = Field("union-platform", description="the `iss` every token must carry")
    auth_audience: str = Field("union-platform", description="the `aud` every token must carry")
    auth_keys_recheck: float = Field(
        300, gt=0, le=86_400, description="seconds before the issuer's keys are looked at again (a removed key stops)"
    )

    @field_validator("db_schema")
    @classmethod
    def _schema_is_an_identifier(cls, value: str) -> str:
        if not _SCHEMA.match(value):
            raise ValueError("db_schema must be a lower-case SQL identifier")
        return value

    @model_validator(mode="after")
    def _heartbeats_within_the_session(self) -> Self:
        if self.kafka_heartbeat_interval_ms * 3 > self.kafka_session_timeout_ms:
            raise ValueError("kafka_heartbeat_interval_ms must be at most a third of kafka_session_timeout_ms")
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password and self.kafka_sasl_password.get_secret_value()
        ):
            protocol = self.kafka_security_protocol
            raise ValueError(f"kafka_security_protocol {protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        return self

    def kafka_security(self) -> KafkaSecurity:
        """The aiokafka keyword arguments for this service's principal (the password in clear: never log them)."""
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        return KafkaSecurity(
            security_protocol=protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_plain_username=self.kafka_sasl_username if sasl else None,
            sasl_plain_password=(
                self.kafka_sasl_password.get_secret_value() if sasl and self.kafka_sasl_password else None
            ),
            ssl_context=_ssl_context(self.kafka_ssl_cafile) if protocol in {"SSL", "SASL_SSL"} else None,
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context  # noqa: PLC0415 - settings stay importable without a Kafka client

    context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    return context
