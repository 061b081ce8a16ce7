"""The composition root: settings -> service -> app."""

from __future__ import annotations

from fastapi import FastAPI

from services.servicecard import allocation_api
from services.servicecard.api import router
from services.servicecard.service import ServicecardService, ServicecardSettings
from shared.web.app import create_app


def build_app(settings: ServicecardSettings | None = None) -> FastAPI:
    return create_app(ServicecardService(settings or ServicecardSettings()), [router, allocation_api.router])
