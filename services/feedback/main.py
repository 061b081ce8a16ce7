"""The composition root: settings -> service (pool, store, relay, consumer, sweeper) -> app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.feedback.api import router
from services.feedback.service import FeedbackService, FeedbackSettings
from shared.app import create_app
from shared.auth import TokenVerifier
from shared.telemetry import setup_telemetry


def build_app(settings: FeedbackSettings | None = None) -> FastAPI:
    service = FeedbackService(settings or FeedbackSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        app.state.service = service
        app.state.watermarks = service.runtime.watermarks  # reads with position tokens wait on it
        yield
        await service.stop()

    setup_telemetry("feedback")
    return create_app(
        "feedback", lifespan, [router], TokenVerifier.from_settings(service.settings), lambda _: service.ready_checks()
    )
