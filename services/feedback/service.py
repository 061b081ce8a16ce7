"""Feedback's settings and running parts, handed to the routes as one dependency."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from pydantic import Field, SecretStr, field_validator

from services.feedback import ballot_box, consumers, projections
from services.feedback.events import registry
from services.feedback.handlers import Clock, Feedback
from services.feedback.sealing import CampaignKeys
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
        self._master_key = base64.b64decode(settings.ballot_master_key.get_secret_value())
        self._boxes_sealed = asyncio.Event()

    def keyring(self, campaign_id: UUID) -> CampaignKeys:
        """A campaign's private ballot keys, derived on demand and never kept."""
        return CampaignKeys.derive(self._master_key, campaign_id)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.runtime.store, self.clock, self.keyring)

    async def start(self) -> None:
        await self.runtime.start()
        await self.seal_plaintext_boxes()

    async def seal_plaintext_boxes(self) -> int:
        """Boxes left by a version that kept plaintext counts are sealed before any campaign is closed."""
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await ballot_box.seal_plaintext_boxes(conn, self.keyring)
        if moved:
            log.info("sealed the plaintext ballot boxes of older campaigns", extra={"boxes": moved})
        self._boxes_sealed.set()
        return moved

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
        await self._boxes_sealed.wait()
        while True:
            try:
                await self.close_overdue()
            except Exception:
                log.exception("closing overdue campaigns failed; will retry")
            await asyncio.sleep(self.settings.campaign_sweep_interval)

    def ready_checks(self) -> list[Callable[[], Awaitable[str | None]]]:
        return self.runtime.ready_checks()


async def get_service(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.service
    return service


ServiceDep = Annotated[FeedbackService, Depends(get_service)]
