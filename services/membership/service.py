"""The membership service as the kernel runs it: its settings and its declaration."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.membership import access, consumers, projections
from services.membership.events import registry
from services.membership.handlers import Membership
from shared.pii import PersonalDataVault
from shared.ratelimit import RateLimiter, parse_limit
from shared.runtime import ServiceDefinition
from shared.service import Service
from shared.settings import KernelSettings


class MembershipSettings(KernelSettings):
    db_schema: str = "membership"
    port: int = 8001
    pii_master_key: str = Field(description="base64 of 32 random bytes: wraps every person's data key")
    blind_index_key: str = Field(description="base64 of at least 16 random bytes: keys the identity-number hash")
    founding_threshold: int = Field(25, ge=1, description="members of one employer that suggest founding its union")
    application_rate_per_address: str = Field("30/minute", description="applications one client address may submit")
    application_rate_per_person: str = Field("5/day", description="applications for one identity number")

    @field_validator("application_rate_per_address", "application_rate_per_person")
    @classmethod
    def _is_a_rate(cls, value: str) -> str:
        parse_limit(value)
        return value


class MembershipService(Service):
    settings: MembershipSettings

    def __init__(self, settings: MembershipSettings) -> None:
        self.vault = PersonalDataVault.from_settings(settings.pii_master_key, settings.blind_index_key)
        definition = ServiceDefinition(
            "membership",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(lambda: self.membership),
        )
        super().__init__(settings, definition, access.guard)
        self.rate_limits = RateLimiter(
            {"address": settings.application_rate_per_address, "person": settings.application_rate_per_person}
        )

    @property
    def membership(self) -> Membership:
        return Membership(self.store, self.vault, self.settings.founding_threshold)
