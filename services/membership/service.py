"""The membership service as the kernel runs it: its settings and its declaration."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.membership import access, calendars, consumers, overdue, projections, queue
from services.membership.events import registry
from services.membership.handlers import Membership
from shared.pii import PersonalDataVault
from shared.ratelimit import RateLimiter, parse_limit
from shared.runtime import ServiceDefinition
from shared.service import Service, Worker
from shared.settings import KernelSettings


class MembershipSettings(KernelSettings):
    db_schema: str = "membership"
    port: int = 8001
    pii_master_key: str = Field(description="base64 of 32 random bytes: wraps every person's data key")
    blind_index_key: str = Field(description="base64 of at least 16 random bytes: keys the identity-number hash")
    founding_threshold: int = Field(25, ge=1, description="members of one employer that suggest founding its union")
    application_rate_per_address: str = Field("30/minute", description="applications one client address may submit")
    application_rate_per_person: str = Field("5/day", description="applications for one identity number")
    # 申工社 and 豫工惠 promise contact within 15 working days of an online application
    application_working_days: int = Field(15, ge=1, le=250, description="working days to review an application")
    request_working_days: int = Field(15, ge=1, le=250, description="working days to answer a member's request")
    overdue_poll_interval: float = Field(60, gt=0, description="seconds between looks for applications past due")
    where_to_join_rate_per_address: str = Field("60/minute", description="where-to-join look-ups per address")

    @field_validator("application_rate_per_address", "application_rate_per_person", "where_to_join_rate_per_address")
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
            [*projections.ALL, queue.projection(settings.request_working_days, settings.application_working_days)],
            consumers.handlers(lambda: self.membership),
            consumers.INBOX_KEEPS,
        )
        self.clock: overdue.Clock = overdue.utcnow  # tests move it
        self.overdue = Worker(
            "overdue",
            lambda: overdue.run_overdue_applications(self.pool, self.membership, self.clock()),
            settings.overdue_poll_interval,
        )
        # the notices this release ships, loaded once (a year an operator loaded stays as loaded); looked at again
        # now and then, so a replica started before the database was reachable still does it
        shipped = Worker("shipped-calendars", lambda: calendars.load_shipped(self.store, self.pool, self.clock()), 3600)
        super().__init__(settings, definition, access.guard, [self.overdue, shipped])
        self.rate_limits = RateLimiter(
            {
                "address": settings.application_rate_per_address,
                "person": settings.application_rate_per_person,
                "where_to_join": settings.where_to_join_rate_per_address,
            }
        )

    @property
    def membership(self) -> Membership:
        return Membership(
            self.store,
            self.vault,
            self.settings.founding_threshold,
            self.settings.application_working_days,
            self.clock,
        )
