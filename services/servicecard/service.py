"""The service-card service as the kernel runs it: its settings and its declaration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from services.servicecard import access, allocation_projections, consumers, projections
from services.servicecard.allocation_handlers import Allocations
from services.servicecard.events import registry
from services.servicecard.handlers import Servicecard
from shared.runtime import ServiceDefinition
from shared.service import Service, Worker
from shared.settings import KernelSettings
from shared.store import Metadata


class ServicecardSettings(KernelSettings):
    db_schema: str = "servicecard"
    port: int = 8003
    allocation_sweep_interval: float = Field(
        10.0, gt=0, description="seconds between sweeps that hold due draws and record no-shows of expired wins"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServicecardService(Service):
    settings: ServicecardSettings

    def __init__(self, settings: ServicecardSettings) -> None:
        self.clock: Callable[[], datetime] = utc_now  # the seam where tests move time (allocations)
        definition = ServiceDefinition(
            "servicecard",
            registry,
            Path(__file__).parent / "migrations",
            [*projections.ALL, *allocation_projections.ALL],
            consumers.handlers(lambda: self.servicecard),
            consumers.INBOX_KEEPS,
        )
        sweeper = Worker("allocation-sweeper", self.sweep_allocations, settings.allocation_sweep_interval)
        super().__init__(settings, definition, access.guard, [sweeper])

    @property
    def servicecard(self) -> Servicecard:
        return Servicecard(self.store)

    @property
    def allocations(self) -> Allocations:
        return Allocations(self.store, self.clock)

    async def sweep_allocations(self) -> int:
        """Hold the draws whose entries closed, and record the no-shows of wins left unused past their expiry."""
        meta = Metadata(actor="service:servicecard")
        async with self.pool.acquire() as conn:
            draws = await self.allocations.due_draws(conn)
            members = await self.allocations.members_with_expired(conn)
        done = 0
        for allocation_id in draws:
            async with self.pool.acquire() as conn, conn.transaction():
                done += len(await self.allocations.draw(conn, allocation_id, meta)) or 1
        for member_id in members:
            async with self.pool.acquire() as conn, conn.transaction():
                done += await self.allocations.record_no_shows(conn, member_id, meta)
        return done
