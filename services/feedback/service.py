"""Feedback's settings and running parts, handed to the routes as one dependency."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from pydantic import Field

from services.feedback import consumers, projections
from services.feedback.events import registry
from services.feedback.handlers import Clock, Feedback
from shared.runtime import Runtime, ServiceDefinition
from shared.settings import KernelSettings
from shared.store import Metadata

log = logging.getLogger("services.feedback")


class FeedbackSettings(KernelSettings):
    db_schema: str = "feedback"
    port: int = 8004
    campaign_sweep_interval: float = Field(
        10.0, gt=0, description="seconds between sweeps that record the close of campaigns whose deadline passed"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class FeedbackService:
    def __init__(self, settings: FeedbackSettings) -> None:
        self.settings = settings
        self.clock: Clock = utc_now  # the seam where tests move time
        definition = ServiceDefinition(
            "feedback",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(),
        )
        self.runtime = Runtime(definition, settings)
        self.runtime.add_worker("campaign-sweeper", self._sweep_forever)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.runtime.store, self.clock)

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

    async def close_overdue(self) -> int:
        """Record the close of every campaign whose deadline passed; returns how many it closed."""
        meta = Metadata(actor="service:feedback")
        async with self.pool.acquire() as conn:
            overdue = await self.feedback.overdue_campaigns(conn)
        for campaign_id in overdue:
            async with self.pool.acquire() as conn, conn.transaction():
                await self.feedback.settle(conn, campaign_id, meta)
        return len(overdue)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.close_overdue()
            except Exception:
                log.exception("closing overdue campaigns failed; will retry")
            await asyncio.sleep(self.settings.campaign_sweep_interval)

    def ready_checks(self) -> list[Callable[[], Awaitable[str | None]]]:
        return self.runtime.ready_checks()


def get_service(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.service
    return service


ServiceDep = Annotated[FeedbackService, Depends(get_service)]
