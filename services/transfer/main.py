"""The composition root: settings -> service -> app."""

from __future__ import annotations

from fastapi import FastAPI

from services.transfer.api import router
from services.transfer.service import TransferService, TransferSettings
from shared.web.app import create_app


def build_app(settings: TransferSettings | None = None) -> FastAPI:
    return create_app(TransferService(settings or TransferSettings()), [router])
