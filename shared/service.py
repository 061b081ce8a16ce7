"""A service as the kernel runs it: one declaration (its events, migrations, read models, what it consumes, its
background loops, who may do what) turned into running parts (pool, store, relay, consumer, workers).

A service subclasses `Service`, builds its `ServiceDefinition` and hands it here; `shared.web.app.service_app`
turns it into the HTTP app. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from shared.auth import Guard
from shared.runtime import ReadyCheck, Runtime, ServiceDefinition
from shared.settings import KernelSettings
from shared.store import EventStore

log = logging.getLogger("shared.service")


class Worker:
    """A background loop: runs `step` (which returns how much it did), then sleeps `interval` or until woken.

    Its state lives in the database (rows it claims, e.g. with FOR UPDATE SKIP LOCKED), never in memory, so a
    restart or a second replica loses and doubles nothing. A failing step is logged and tried again next round."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], interval: float) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self.done = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.done += await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: step failed; retrying", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


class Service:
    """The kernel's side of a service: subclasses add their settings, their handlers and their workers."""

    def __init__(
        self,
        settings: KernelSettings,
        definition: ServiceDefinition,
        guard: Guard,
        workers: Sequence[Worker] = (),
    ) -> None:
        self.settings = settings
        self.guard = guard  # who may do what: checked by every route (shared.web.routes.Call)
        self.runtime = Runtime(definition, settings)
        for worker in workers:
            self.runtime.add_worker(worker.name, worker.run, worker.request_stop)

    @property
    def name(self) -> str:
        return self.runtime.definition.name

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    @property
    def store(self) -> EventStore:
        return self.runtime.store

    async def prepare(self) -> None:
        """Once the database is migrated and before any loop starts: a service's own start-up step, if any."""

    async def start(self, *, background: bool = True) -> None:
        await self.runtime.start(background=background, prepare=self.prepare)

    async def stop(self) -> None:
        await self.runtime.stop()

    def ready_checks(self) -> list[ReadyCheck]:
        return self.runtime.ready_checks()
