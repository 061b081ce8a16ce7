"""The composition root: settings -> service -> app."""

from __future__ import annotations

from fastapi import FastAPI

from services.dues.api import router
from services.dues.service import DuesService, DuesSettings
from shared.web.app import create_app


def build_app(settings: DuesSettings | None = None) -> FastAPI:
    return create_app(DuesService(settings or DuesSettings()), [router])
