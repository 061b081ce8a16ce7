"""The transfer service as the kernel runs it: its settings, its declaration and its two background loops."""

from __future__ import annotations

import base64
import logging
import os
from datetime import timedelta
from pathlib import Path

from pydantic import Field

from services.transfer import access, consumers, projections
from services.transfer.events import registry
from services.transfer.handlers import Transfers
from services.transfer.workers import run_due_deadlines, run_pending_batches
from shared.pii import PersonalDataVault
from shared.runtime import ServiceDefinition
from shared.service import Service, Worker
from shared.settings import KernelSettings

log = logging.getLogger("services.transfer")


class TransferSettings(KernelSettings):
    db_schema: str = "transfer"
    port: int = 8002
    blind_index_key: str = Field(
        description="base64 of at least 16 bytes: the same key as membership's, so the identity-number hashes agree"
    )
    transfer_expiry_days: float = Field(30, gt=0, description="an open transfer escalates (or expires) after this")
    transfer_expiry_seconds: float | None = Field(None, gt=0, description="overrides transfer_expiry_days")
    escalation_expiry_days: float = Field(30, gt=0, description="the common parent's time to decide, then it expires")
    escalation_expiry_seconds: float | None = Field(None, gt=0, description="overrides escalation_expiry_days")
    deadline_poll_interval: float = Field(1.0, gt=0, description="how often the scheduler looks for due deadlines")
    bulk_poll_interval: float = Field(1.0, gt=0, description="how often the bulk worker looks for pending batches")
    bulk_chunk_size: int = Field(50, ge=1, description="members requested per bulk transaction")

    @property
    def expires_in(self) -> timedelta:
        if self.transfer_expiry_seconds is not None:
            return timedelta(seconds=self.transfer_expiry_seconds)
        return timedelta(days=self.transfer_expiry_days)

    @property
    def escalation_window(self) -> timedelta:
        if self.escalation_expiry_seconds is not None:
            return timedelta(seconds=self.escalation_expiry_seconds)
        return timedelta(days=self.escalation_expiry_days)


class TransferService(Service):
    settings: TransferSettings

    def __init__(self, settings: TransferSettings) -> None:
        # transfer only looks people up by the keyed hash: it never holds the master key that reads their data
        self.vault = PersonalDataVault(os.urandom(32), base64.b64decode(settings.blind_index_key))
        definition = ServiceDefinition(
            "transfer",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(lambda: self.transfers, self.vault),
        )
        self.scheduler = Worker(
            "deadlines", lambda: run_due_deadlines(self.pool, self.transfers), settings.deadline_poll_interval
        )
        self.bulk = Worker(
            "bulk",
            lambda: run_pending_batches(self.pool, self.transfers, settings.bulk_chunk_size),
            settings.bulk_poll_interval,
        )
        super().__init__(settings, definition, access.guard, [self.scheduler, self.bulk])

    @property
    def transfers(self) -> Transfers:
        return Transfers(
            self.store, expires_in=self.settings.expires_in, escalation_window=self.settings.escalation_window
        )
