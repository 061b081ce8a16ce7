"""The composition root: settings -> service -> app."""

from __future__ import annotations

from fastapi import FastAPI

from services.membership.api import public, router
from services.membership.calendar_api import router as calendar
from services.membership.retention_api import router as retention
from services.membership.service import MembershipService, MembershipSettings
from shared.web.app import create_app


def build_app(settings: MembershipSettings | None = None) -> FastAPI:
    return create_app(MembershipService(settings or MembershipSettings()), [router, public, retention, calendar])
