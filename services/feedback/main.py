"""The composition root: settings -> service -> app."""

from __future__ import annotations

from fastapi import FastAPI

from services.feedback import election_api
from services.feedback.api import router
from services.feedback.service import FeedbackService, FeedbackSettings
from shared.web.app import create_app


def build_app(settings: FeedbackSettings | None = None) -> FastAPI:
    return create_app(FeedbackService(settings or FeedbackSettings()), [router, election_api.router])
