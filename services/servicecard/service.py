"""Service card settings and running parts, handed to the routes as one dependency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.servicecard import consumers, projections
from services.servicecard.events import registry
from services.servicecard.handlers import Servicecard
from shared.runtime import Runtime, ServiceDefinition
from shared.settings import KernelSettings


class ServicecardSettings(KernelSettings):
    db_schema: str = "servicecard"
    port: int = 8003


class ServicecardService:
    def __init__(self, settings: ServicecardSettings) -> None:
        self.settings = settings
        definition = ServiceDefinition(
            "servicecard",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(lambda: self.servicecard),
        )
        self.runtime = Runtime(definition, settings)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def servicecard(self) -> Servicecard:
        return Servicecard(self.runtime.store)


async def get_service(request: Request) -> ServicecardService:
    service: ServicecardService = request.app.state.service
    return service


ServiceDep = Annotated[ServicecardService, Depends(get_service)]
