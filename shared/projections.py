"""Read models: small functions per event, applied in the writing transaction, rebuildable from the log.

Own events are projected inside their append; consumed messages inside their inbox transaction. So
the read models are always at the head of the log, and a rebuild replays the log (own events and the
inbox, in position order) into empty tables, then records the position it reached as the checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from shared.store import EventStore, Recorded

ProjectionHandler = Callable[[asyncpg.Connection, Recorded], Awaitable[None]]
Progress = Callable[[int, int], None]


@dataclass
class Projection:
    """Handlers by (source, event name). `on(name)` is for the service's own events; another service's events
    are named with their source (`on(name, source="/union/membership")`): a namesake from anywhere else is
    never applied, so no other topic can write this read model."""

    name: str
    tables: Sequence[str]
    handlers: dict[tuple[str | None, str], ProjectionHandler] = field(default_factory=dict)
    own_source: str | None = None  # set by the Runtime; unset (kernel tests): `on(name)` takes any source

    def on(self, event_name: str, source: str | None = None) -> Callable[[ProjectionHandler], ProjectionHandler]:
        def register(fn: ProjectionHandler) -> ProjectionHandler:
            self.handlers[(source, event_name)] = fn
            return fn

        return register

    async def apply(self, conn: asyncpg.Connection, entry: Recorded) -> None:
        handler = self.handlers.get((entry.source, entry.name))
        if handler is None and (self.own_source is None or entry.source == self.own_source):
            handler = self.handlers.get((None, entry.name))
        if handler is not None:
            await handler(conn, entry)


class ProjectionRunner:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, projections: Sequence[Projection]) -> None:
        self.pool = pool
        self.store = store
        self.projections = {p.name: p for p in projections}

    async def rebuild(
        self, name: str, progress: Progress | None = None, batch: int = 2000, drain_timeout: float = 30
    ) -> int:
        """Empty the projection's tables and replay the whole log into them; returns events replayed.

        Reads keep being served from the old rows until the rebuild commits; writers wait for it.
        """
        projection = self.projections[name]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(2, ($1::bigint >> 40)::int)", self.store.namespace)
            await self._drain(conn, drain_timeout)
            total = int(await conn.fetchval("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM inbox)"))
            for table in projection.tables:
                await conn.execute(f"DELETE FROM {table}")
            done, after = 0, 0
            while entries := await self.store.read_log(conn, after, batch):
                for entry in entries:
                    await projection.apply(conn, entry)
                done += len(entries)
                after = entries[-1].position
                if progress is not None:
                    progress(done, total)
            await conn.execute(
                "INSERT INTO checkpoints (name, position) VALUES ($1, $2) "
                "ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()",
                name,
                after,
            )
        return done

    async def _drain(self, conn: asyncpg.Connection, timeout: float) -> None:
        """Wait until no writer that allocated positions before the lock is still in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            safe = await self.store.safe_position(conn)
            allocated = await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM log_position")
            if safe >= allocated:
                return
            if loop.time() > deadline:
                raise TimeoutError("writers still in flight; rebuild abandoned")
            await asyncio.sleep(0.05)

    async def status(self) -> list[dict[str, object]]:
        async with self.pool.acquire() as conn:
            head = await self.store.safe_position(conn)
            rows = {r["name"]: r for r in await conn.fetch("SELECT name, position, updated_at FROM checkpoints")}
        return [
            {
                "projection": name,
                "head": head,
                "rebuilt_at_position": rows[name]["position"] if name in rows else None,
                "lag": 0,
            }
            for name in self.projections
        ]
