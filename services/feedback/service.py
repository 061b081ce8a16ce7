"""The feedback service as the kernel runs it: its settings, its declaration, its campaign sweeper."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from pydantic import Field, SecretStr, field_validator

from services.feedback import access, ballot_box, consumers, election_projections, projections
from services.feedback.election_handlers import Elections
from services.feedback.election_sealing import RoundKeys
from services.feedback.events import registry
from services.feedback.handlers import Clock, Feedback
from services.feedback.sealing import CampaignKeys
from shared.runtime import ServiceDefinition
from shared.service import Service, Worker
from shared.settings import KernelSettings
from shared.store import Metadata

log = logging.getLogger("services.feedback")


class FeedbackSettings(KernelSettings):
    db_schema: str = "feedback"
    port: int = 8004
    campaign_sweep_interval: float = Field(
        10.0, gt=0, description="seconds between sweeps that record the close of campaigns whose deadline passed"
    )
    election_sweep_interval: float = Field(
        10.0, gt=0, description="seconds between sweeps that count the election rounds whose deadline passed"
    )
    ballot_master_key: SecretStr = Field(
        description="base64 of 32 random bytes: every campaign's private ballot keys are derived from it, in memory. "
        "Losing it loses the results of every open campaign; whoever holds it and a copy of the database can open "
        "the ballots"
    )

    @field_validator("ballot_master_key")
    @classmethod
    def _is_a_key(cls, value: SecretStr) -> SecretStr:
        try:
            key = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("ballot_master_key must be base64") from None
        if len(key) < 32:
            raise ValueError("ballot_master_key must hold at least 32 random bytes")
        return value


def utc_now() -> datetime:
    return datetime.now(UTC)


class FeedbackService(Service):
    settings: FeedbackSettings

    def __init__(self, settings: FeedbackSettings) -> None:
        self.clock: Clock = utc_now  # the seam where tests move time
        definition = ServiceDefinition(
            "feedback",
            registry,
            Path(__file__).parent / "migrations",
            [*projections.ALL, election_projections.elections],
            consumers.handlers(),
        )
        sweeper = Worker("campaign-sweeper", self.close_overdue, settings.campaign_sweep_interval)
        rounds = Worker("election-round-sweeper", self.count_overdue_rounds, settings.election_sweep_interval)
        super().__init__(settings, definition, access.guard, [sweeper, rounds])
        self._master_key = base64.b64decode(settings.ballot_master_key.get_secret_value())

    def keyring(self, campaign_id: UUID) -> CampaignKeys:
        """A campaign's private ballot keys, derived on demand and never kept."""
        return CampaignKeys.derive(self._master_key, campaign_id)

    def round_keyring(self, election_id: UUID, round_no: int, candidates: int) -> RoundKeys:
        """An election round's private keys (one per candidate), derived on demand and never kept."""
        return RoundKeys.derive(self._master_key, election_id, round_no, candidates)

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.store, self.clock, self.keyring)

    @property
    def elections(self) -> Elections:
        return Elections(self.store, self.clock, self.round_keyring)

    async def prepare(self) -> None:
        await self.seal_plaintext_boxes()  # before the sweeper may close a campaign

    async def seal_plaintext_boxes(self) -> int:
        """Boxes left by a version that kept plaintext counts are sealed before any campaign is closed."""
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await ballot_box.seal_plaintext_boxes(conn, self.keyring)
        if moved:
            log.info("sealed the plaintext ballot boxes of older campaigns", extra={"boxes": moved})
        return moved

    async def close_overdue(self) -> int:
        """Record the close of every campaign whose deadline passed; returns how many it closed."""
        meta = Metadata(actor="service:feedback")
        async with self.pool.acquire() as conn:
            overdue = await self.feedback.overdue_campaigns(conn)
        for campaign_id in overdue:
            async with self.pool.acquire() as conn, conn.transaction():
                await self.feedback.settle(conn, campaign_id, meta)
        return len(overdue)

    async def count_overdue_rounds(self) -> int:
        """Count every election round whose deadline passed; returns how many it counted."""
        meta = Metadata(actor="service:feedback")
        async with self.pool.acquire() as conn:
            overdue = await self.elections.overdue_rounds(conn)
        for election_id in overdue:
            async with self.pool.acquire() as conn, conn.transaction():
                await self.elections.settle(conn, election_id, meta)
        return len(overdue)
