"""The dues service as the kernel runs it: its settings, its declaration and the monthly review."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from services.dues import access, consumers, projections
from services.dues.events import registry
from services.dues.handlers import Dues
from shared.runtime import ServiceDefinition
from shared.service import Service, Worker
from shared.settings import KernelSettings
from shared.store import Metadata

REVIEWER = Metadata(actor="scheduler:dues-review")


class DuesSettings(KernelSettings):
    db_schema: str = "dues"
    port: int = 8005
    dues_review_interval: float = Field(
        3600, gt=0, description="seconds between looks for accounts whose month is not assessed yet"
    )
    dues_review_batch: int = Field(500, ge=1, le=5000, description="accounts assessed per transaction")


class DuesService(Service):
    settings: DuesSettings

    def __init__(self, settings: DuesSettings) -> None:
        definition = ServiceDefinition(
            "dues",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(lambda: self.dues),
        )
        self.review = Worker("dues-review", self.review_step, settings.dues_review_interval)
        super().__init__(settings, definition, access.guard, [self.review])

    @property
    def dues(self) -> Dues:
        return Dues(self.store)

    async def review_step(self) -> int:
        """Assess the month for every account not assessed through it yet; open the six-month cases it calls for."""
        today = datetime.now(UTC).date()
        done = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                n = await self.dues.review_due(conn, today, self.settings.dues_review_batch, REVIEWER)
            done += n
            if n < self.settings.dues_review_batch:
                return done
