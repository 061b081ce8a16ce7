"""The composition root: settings -> service (pool, store, relay, consumer) -> app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.servicecard.api import router
from services.servicecard.service import ServicecardService, ServicecardSettings
from shared.app import create_app
from shared.auth import TokenVerifier
from shared.telemetry import setup_telemetry


def build_app(settings: ServicecardSettings | None = None) -> FastAPI:
    service = ServicecardService(settings or ServicecardSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.runtime.start()
        app.state.service = service
        app.state.watermarks = service.runtime.watermarks  # reads with position tokens wait on it
        yield
        await service.runtime.stop()

    setup_telemetry("servicecard")
    return create_app(
        "servicecard",
        lifespan,
        [router],
        TokenVerifier.from_settings(service.settings),
        lambda _: service.runtime.ready_checks(),
    )
