"""The service-card service as the kernel runs it: its settings and its declaration."""

from __future__ import annotations

from pathlib import Path

from services.servicecard import access, consumers, projections
from services.servicecard.events import registry
from services.servicecard.handlers import Servicecard
from shared.runtime import ServiceDefinition
from shared.service import Service
from shared.settings import KernelSettings


class ServicecardSettings(KernelSettings):
    db_schema: str = "servicecard"
    port: int = 8003


class ServicecardService(Service):
    settings: ServicecardSettings

    def __init__(self, settings: ServicecardSettings) -> None:
        definition = ServiceDefinition(
            "servicecard",
            registry,
            Path(__file__).parent / "migrations",
            projections.ALL,
            consumers.handlers(lambda: self.servicecard),
        )
        super().__init__(settings, definition, access.guard)

    @property
    def servicecard(self) -> Servicecard:
        return Servicecard(self.store)
