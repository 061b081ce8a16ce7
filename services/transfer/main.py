"""The composition root: settings -> service (pool, store, relay, consumers, scheduler, bulk worker) -> app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.transfer.api import router
from services.transfer.service import TransferService, TransferSettings
from shared.app import create_app
from shared.auth import TokenVerifier
from shared.telemetry import setup_telemetry


def build_app(settings: TransferSettings | None = None) -> FastAPI:
    service = TransferService(settings or TransferSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        app.state.service = service
        app.state.watermarks = service.runtime.watermarks  # reads with position tokens wait on it
        yield
        await service.stop()

    setup_telemetry("transfer")
    return create_app(
        "transfer", lifespan, [router], TokenVerifier.from_settings(service.settings), lambda _: service.ready_checks()
    )
