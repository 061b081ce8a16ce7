"""Read models: small functions per event, applied in the writing transaction, rebuildable from the log.

Own events are projected inside their append; consumed messages inside their inbox transaction. So
the read models are always at the head of the log, and a rebuild replays the log (own events and the
inbox, in position order) into empty tables, then records the position it reached as the checkpoint.

A handler is either a plain function that returns the statements an event means (`[stmt(sql, *args), ...]`),
a coroutine that runs what it needs on the connection (reads, decisions), or a `batch_handler` coroutine that
takes a run's entries at once. Statement handlers are what
make batches cheap: for a run of consecutive entries of one event type, their statements are grouped by
SQL text, in the order each text first appeared, and each group goes to the server as one pipelined
`executemany`. So a statement handler's statements must not depend on another entry's statements of a
different text within the run (inserts into two tables, updates of one row's columns: fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from shared.store import EventStore, Recorded

Statement = tuple[str, Sequence[Any]]
Statements = list[Statement]
AsyncHandler = Callable[[asyncpg.Connection, Recorded], Awaitable[None]]
StatementHandler = Callable[[Recorded], Statements]
BatchProjectionHandler = Callable[[asyncpg.Connection, Sequence[Recorded]], Awaitable[None]]
ProjectionHandler = AsyncHandler | StatementHandler | BatchProjectionHandler
Progress = Callable[[int, int], None]
H = TypeVar("H", AsyncHandler, StatementHandler, BatchProjectionHandler)
BH = TypeVar("BH", bound=Callable[..., Awaitable[None]])


def stmt(sql: str, *args: Any) -> Statement:
    """One statement of a statement handler: `return [stmt("UPDATE ...", a, b)]`."""
    return sql, args


@dataclass
class Projection:
    """Handlers by (source, event name). `on(name)` is for the service's own events; another service's events
    are named with their source (`on(name, source="/union/membership")`): a namesake from anywhere else is
    never applied, so no other topic can write this read model."""

    name: str
    tables: Sequence[str]
    handlers: dict[tuple[str | None, str], ProjectionHandler] = field(default_factory=dict)
    own_source: str | None = None  # set by the Runtime; unset (kernel tests): `on(name)` takes any source

    def on(self, event_name: str, source: str | None = None) -> Callable[[H], H]:
        def register(fn: H) -> H:
            self.handlers[(source, event_name)] = fn
            return fn

        return register

    def handler(self, entry: Recorded) -> ProjectionHandler | None:
        return self.lookup(entry.source, entry.name)

    def lookup(self, source: str, event_name: str) -> ProjectionHandler | None:
        """The handler of `source`'s `event_name`, if this projection has one."""
        handler = self.handlers.get((source, event_name))
        if handler is None and (self.own_source is None or source == self.own_source):
            handler = self.handlers.get((None, event_name))
        return handler

    async def apply(self, conn: asyncpg.Connection, entry: Recorded) -> None:
        await apply_batch((self,), conn, (entry,))


def batch_handler(fn: BH) -> BH:
    """Mark a handler that takes a run's entries at once (in order): for work that is cheaper per batch than per
    event, such as totals summed in memory and written once per key."""
    fn.takes_batch = True  # type: ignore[attr-defined]
    return fn


def takes_batch(handler: object) -> bool:
    return bool(getattr(handler, "takes_batch", False))


def _kind(handler: ProjectionHandler) -> str:
    if takes_batch(handler):
        return "batch"
    return "async" if inspect.iscoroutinefunction(handler) else "statements"


class _Run:
    """What a run of one event type asks for, sent when the run ends (or before an entry-by-entry handler)."""

    def __init__(self) -> None:
        self.statements: dict[str, list[Sequence[Any]]] = {}
        self.batches: dict[BatchProjectionHandler, list[Recorded]] = {}

    async def flush(self, conn: asyncpg.Connection) -> None:
        for sql, rows in self.statements.items():
            if len(rows) == 1:
                await conn.execute(sql, *rows[0])
            else:
                await conn.executemany(sql, rows)
        for handler, entries in self.batches.items():
            await handler(conn, entries)
        self.statements.clear()
        self.batches.clear()


async def apply_batch(projections: Sequence[Projection], conn: asyncpg.Connection, entries: Iterable[Recorded]) -> None:
    """Apply `entries`, in order, to every projection: statement and batch handlers set-wise per run of one event
    type, entry-by-entry handlers in between."""
    pending = _Run()
    run: tuple[str, str] | None = None
    handlers: list[tuple[str, Any]] = []
    for entry in entries:
        if (entry.source, entry.name) != run:
            await pending.flush(conn)
            run = (entry.source, entry.name)
            # looked up once per run: an import's run is thousands of entries of one type
            handlers = [(_kind(h), h) for h in (p.handler(entry) for p in projections) if h is not None]
        for kind, handler in handlers:
            if kind == "batch":
                pending.batches.setdefault(handler, []).append(entry)
            elif kind == "async":
                await pending.flush(conn)
                await handler(conn, entry)
            else:
                for sql, args in handler(entry):
                    pending.statements.setdefault(sql, []).append(args)
    await pending.flush(conn)


class RebuildRunningError(RuntimeError):
    """Another rebuild of this service's read models runs: one at a time."""


# a table's primary key, unique and exclusion constraints (each backed by an index of its name)
_KEY_CONSTRAINTS = """
SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname
"""
# its other indexes, as CREATE INDEX statements naming the table as `qualified`
_OTHER_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) AS definition, $1::regclass::text AS qualified FROM pg_index i
WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid
"""
_INDEXED_TABLE = re.compile(r' ON (?:ONLY )?(?:"[^"]+"|\w+)\.(?:"[^"]+"|\w+) USING ')


class ProjectionRunner:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, projections: Sequence[Projection]) -> None:
        self.pool = pool
        self.store = store
        self.projections = {p.name: p for p in projections}

    async def rebuild(
        self,
        name: str,
        progress: Progress | None = None,
        batch: int = 5000,
        drain_timeout: float = 30,
        *,
        requested: bool = False,
    ) -> int:
        """Replay the whole log into fresh copies of the projection's tables and put them in place of the old ones;
        returns the log entries replayed by this call.

        Every projection that writes to one of those tables is replayed with it (e.g. transfer's own moves into the
        kernel's directory). The copies are built beside the service, in a schema of their own (`<schema>__rebuild`),
        a batch per transaction with the position it reached: the service keeps writing and serving the old tables
        meanwhile, and a rebuild that stopped (killed, the database gone) resumes from that position when asked
        again. Only the last stretch, from wherever the copies stand to the head, holds writers back: then the
        copies take the old tables' place in the same transaction.

        One rebuild at a time per schema: another asked meanwhile is refused (RebuildRunningError), except one a
        migration `requested` (`rebuild_requests`), which waits its turn and is done once: the request goes in the
        transaction that puts the copies in place, so replicas starting together rebuild it once.
        """
        group = self.sharing_tables(name)
        tables = list(dict.fromkeys(t for p in group for t in p.tables))
        main, shadow = self.store.schema, f"{self.store.schema}__rebuild"
        async with self._one_at_a_time(wait=requested) as lock_conn:
            if requested and not await lock_conn.fetchval("SELECT 1 FROM rebuild_requests WHERE name = $1", name):
                return 0  # another replica, starting with this one, did it
            done, after = await self._prepare(shadow, main, group, tables)
            total = int(await lock_conn.fetchval("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM inbox)"))
            replayed = 0
            while True:  # beside the service, a batch per transaction
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{shadow}", "{main}"')
                    entries = await self.store.read_log(conn, after, batch)
                    if len(entries) < batch:
                        break  # near the head: the rest under the lock
                    await apply_batch(group, conn, entries)
                    after = entries[-1].position
                    await conn.execute("UPDATE rebuild_state SET position = $1, done = done + $2", after, len(entries))
                done, replayed = done + len(entries), replayed + len(entries)
                if progress is not None:
                    progress(done, total)
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(2, ($1::bigint >> 40)::int)", self.store.namespace)
                await self._drain(conn, drain_timeout)
                await conn.execute(f'SET LOCAL search_path TO "{shadow}", "{main}"')
                while entries := await self.store.read_log(conn, after, batch):
                    await apply_batch(group, conn, entries)
                    after = entries[-1].position
                    done, replayed = done + len(entries), replayed + len(entries)
                    if progress is not None:
                        progress(done, max(total, done))
                await self._swap(conn, main, shadow, tables, [(p.name, after) for p in group])
                await conn.execute("DELETE FROM rebuild_requests WHERE name = $1", name)
            if progress is not None:
                progress(done, done)
        return replayed

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, wait: bool) -> AsyncIterator[asyncpg.Connection]:
        """One rebuild at a time per schema: a session lock, on a connection held for the rebuild. `wait`: until the
        rebuild running ends, else refuse."""
        key = "(3, ($1::bigint >> 40)::int)"
        async with self.pool.acquire() as conn:
            if wait:
                await conn.execute(f"SELECT pg_advisory_lock{key}", self.store.namespace)
            elif not await conn.fetchval(f"SELECT pg_try_advisory_lock{key}", self.store.namespace):
                raise RebuildRunningError(f"a rebuild of {self.store.schema} runs already")
            try:
                yield conn
            finally:
                await conn.execute(f"SELECT pg_advisory_unlock{key}", self.store.namespace)

    @staticmethod
    async def _swap(
        conn: asyncpg.Connection, main: str, shadow: str, tables: Sequence[str], checkpoints: list[tuple[str, int]]
    ) -> None:
        """The copies take the old tables' place (their names, their indexes' names), and the checkpoints move."""
        await conn.execute(f'SET LOCAL search_path TO "{main}"')
        for table in tables:
            await conn.execute(f'DROP TABLE "{main}"."{table}"')
            await conn.execute(f'ALTER TABLE "{shadow}"."{table}" SET SCHEMA "{main}"')
        await conn.execute(f'DROP SCHEMA "{shadow}" CASCADE')
        await conn.executemany(
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()",
            checkpoints,
        )

    async def _prepare(
        self, shadow: str, main: str, group: Sequence[Projection], tables: Sequence[str]
    ) -> tuple[int, int]:
        """The copies' schema: resumed where a stopped rebuild of the same tables left it (entries done, position),
        else made afresh: each table as the old one, with its constraints' and indexes' own names, empty."""
        names = sorted(p.name for p in group)
        async with self.pool.acquire() as conn, conn.transaction():
            state = None
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{shadow}".rebuild_state'):
                state = await conn.fetchrow(f'SELECT projections, done, position FROM "{shadow}".rebuild_state')
            if state is not None and list(state["projections"]) == names:
                return int(state["done"]), int(state["position"])
            await conn.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')  # another rebuild's, stopped: begun again
            await conn.execute(f'CREATE SCHEMA "{shadow}"')
            await conn.execute(
                f'CREATE TABLE "{shadow}".rebuild_state (projections text[] NOT NULL, done bigint NOT NULL,'
                " position bigint NOT NULL)"
            )
            await conn.execute(f'INSERT INTO "{shadow}".rebuild_state VALUES ($1, 0, 0)', names)
            for table in tables:
                await conn.execute(
                    f'CREATE TABLE "{shadow}"."{table}" (LIKE "{main}"."{table}" INCLUDING ALL EXCLUDING INDEXES)'
                )
                for key in await conn.fetch(_KEY_CONSTRAINTS, f'"{main}"."{table}"'):
                    await conn.execute(
                        f'ALTER TABLE "{shadow}"."{table}" ADD CONSTRAINT "{key["name"]}" {key["definition"]}'
                    )
                for index in await conn.fetch(_OTHER_INDEXES, f'"{main}"."{table}"'):
                    await conn.execute(
                        _INDEXED_TABLE.sub(f' ON "{shadow}"."{table}" USING ', index["definition"], count=1)
                    )
        return 0, 0

    def sharing_tables(self, name: str) -> list[Projection]:
        """The projection and every one writing to a table it shares with them, transitively, in declared order."""
        group = {name}
        while True:
            tables = {t for n in group for t in self.projections[n].tables}
            grown = group | {n for n, p in self.projections.items() if tables.intersection(p.tables)}
            if grown == group:
                return [p for n, p in self.projections.items() if n in group]
            group = grown

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
