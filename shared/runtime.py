"""One service's running parts: pool, migrations, store, relay, consumer, projections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg

from shared import metrics
from shared.consistency import Watermarks
from shared.consumer import BatchHandler, ConsumerRunner, Handler, InboxKeeps
from shared.directory import directory
from shared.events import PUBLIC, EventRegistry
from shared.messaging import PartitionProgress, broker_problem, make_consumer, make_producer, missing_records
from shared.migrations import apply_migrations
from shared.outbox import OutboxRelay
from shared.projections import Projection, ProjectionRunner, apply_batch
from shared.settings import KernelSettings
from shared.store import EventStore

log = logging.getLogger("shared.runtime")

ReadyCheck = Callable[[], Awaitable[str | None]]  # None when ready, else what is missing


# positions appended but not yet published (positions may skip a number a rolled-back append took: an upper bound)
_RELAY_BEHIND = "SELECT coalesce((SELECT max(position) FROM events), 0) - (SELECT position FROM relay_state)"


@dataclass
class ServiceDefinition:
    name: str  # "membership": its topic is union.membership.v1
    registry: EventRegistry
    migrations: Path
    projections: Sequence[Projection] = ()
    consumes: Mapping[str, Handler | BatchHandler] = field(default_factory=dict)  # topic (unprefixed) -> handler
    # the consumed envelopes read again beyond the projections' (which the inbox keeps for a rebuild anyway)
    inbox_keeps: InboxKeeps = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"union.{self.name}.v1"


class Runtime:
    def __init__(self, definition: ServiceDefinition, settings: KernelSettings) -> None:
        self.definition = definition
        self.settings = settings
        # every service keeps the directory: staff tokens are checked against it (shared.auth)
        self.all_projections: list[Projection] = [*definition.projections, directory]
        for projection in definition.projections:
            projection.own_source = definition.registry.source  # `on(name)` means this service's own events
        self._tasks: list[asyncio.Task[None]] = []
        self._unobserve: list[Callable[[], None]] = []
        self._workers: dict[str, tuple[Callable[[], Awaitable[None]], Callable[[], None] | None]] = {}
        self.pool: asyncpg.Pool
        self.store: EventStore
        self.relay: OutboxRelay
        self.consumer: ConsumerRunner | None = None
        self.projections: ProjectionRunner
        self.watermarks: Watermarks

    async def start(self, *, background: bool = True, prepare: Callable[[], Awaitable[None]] | None = None) -> None:
        """Migrate, build the parts, run `prepare` (the service's own start-up step), then start the loops."""
        s = self.settings

        async def reset(conn: asyncpg.Connection) -> None:
            # a connection comes back to the pool once its transaction ended: the moment to wake the relay
            if hasattr(self, "store"):
                self.store.committed(conn)
            # asyncpg has already rolled back a transaction left open. Its full reset (RESET ALL, UNLISTEN *,
            # advisory locks, CLOSE ALL) is a round trip on every release, for state no pooled connection here
            # keeps: settings are SET LOCAL, locks are transaction-scoped, cursors live in transactions. The one
            # holder of session state, the relay (its lock and LISTEN), resets its connection itself.

        self.pool = await asyncpg.create_pool(
            s.database_url,
            min_size=2,
            max_size=s.db_pool_size,
            timeout=s.db_connect_timeout,  # a database that does not answer fails requests fast (503), not after 60 s
            server_settings={"search_path": s.db_schema, "application_name": self.definition.name},
            reset=reset,
        )
        async with self.pool.acquire() as conn:
            await apply_migrations(conn, s.db_schema, self.definition.migrations)
        self.store = EventStore(
            self.pool, self.definition.registry, schema=s.db_schema, topic=s.topic(self.definition.topic)
        )
        self.store.project = partial(apply_batch, self.all_projections)
        self.projections = ProjectionRunner(self.pool, self.store, self.all_projections)
        producer = make_producer(s, f"{s.topic_prefix}{self.definition.name}")
        self.relay = OutboxRelay(
            self.pool,
            self.store,
            producer,
            poll_interval=s.relay_poll_interval,
            verify=partial(missing_records, s),
            verify_interval=s.relay_verify_interval,
            remake=lambda: make_producer(s, f"{s.topic_prefix}{self.definition.name}"),
        )
        # how far this service has consumed the others (reads with position tokens wait for it)
        group = s.consumer_group or f"{s.topic_prefix}{self.definition.name}"
        progress = PartitionProgress(s, group)
        consumed = [s.topic(t) for t in self.definition.consumes]
        self.watermarks = Watermarks(
            self.definition.name,
            self.pool,
            self.store.namespace,
            consumed,
            progress,
            timeout=s.read_after_timeout,
            public_types=[
                c.event_name() for c in self.definition.registry.classes() if c.published and c.channel == PUBLIC
            ],
        )
        if self.definition.consumes and s.run_consumers:
            topics = [s.topic(t) for t in self.definition.consumes]
            self.consumer = ConsumerRunner(
                self.pool,
                self.store,
                make_consumer(s, group, topics),
                producer,
                {s.topic(t): h for t, h in self.definition.consumes.items()},
                self.all_projections,
                group_id=group,
                max_retries=s.consumer_max_retries,
                connect_producer=self.relay.ensure_started,
                remake=lambda: make_consumer(s, group, topics),
                inbox_keeps=self.definition.inbox_keeps,
            )
            consumer = self.consumer
            self.relay.producer_replaced.append(lambda new: setattr(consumer, "producer", new))  # its dead letters
        await self._rebuild_requested()
        self._observe()
        if prepare is not None:
            await prepare()
        if background:
            self._spawn("relay", self.relay.run)
            if self.consumer is not None:
                self._spawn("consumer", self.consumer.run)
            for name, (run, _) in self._workers.items():
                self._spawn(name, run)

    async def _rebuild_requested(self) -> None:
        """Read models a migration replaced are rebuilt from the log before anything runs (shared/migrations)."""
        async with self.pool.acquire() as conn:
            names = [r["name"] for r in await conn.fetch("SELECT name FROM rebuild_requests ORDER BY name")]
        for name in names:
            if name in self.projections.projections:
                # replicas start together: one rebuilds, the others wait for it and find the request gone
                replayed = await self.projections.rebuild(name, requested=True)
                log.info("read model rebuilt as a migration asked", extra={"projection": name, "events": replayed})
            async with self.pool.acquire() as conn:
                await conn.execute("DELETE FROM rebuild_requests WHERE name = $1", name)

    def _observe(self) -> None:
        service = {"service": self.definition.name}
        self._unobserve.append(metrics.observe("union.outbox.backlog", lambda: [(self.relay.backlog_seen, service)]))
        if self.consumer is not None:
            consumer = self.consumer
            self._unobserve += [
                metrics.observe(
                    "union.consumer.lag",
                    lambda: [
                        (lag, {**service, "topic": tp.topic, "partition": str(tp.partition)})
                        for tp, lag in consumer.lag().items()
                    ],
                ),
                metrics.observe("union.dlq.count", lambda: [(consumer.dead_lettered, service)]),
            ]

    def add_worker(
        self, name: str, run: Callable[[], Awaitable[None]], request_stop: Callable[[], None] | None = None
    ) -> None:
        """A service's own background loop (schedulers, sweepers): supervised, stopped with the rest."""
        self._workers[name] = (run, request_stop)

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(name, run), name=name))

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s stopped unexpectedly; restarting", name)
                await asyncio.sleep(1)
            else:
                return

    async def stop(self) -> None:
        for unobserve in self._unobserve:
            unobserve()
        await self._stop_tasks()
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.consumer.consumer.stop(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.relay.producer.stop(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.watermarks.close(), 10)
        try:
            await asyncio.wait_for(self.pool.close(), 10)
        except TimeoutError:
            log.warning("connections still busy after 10 s; closing them")
            self.pool.terminate()

    async def _stop_tasks(self) -> None:
        """Ask every loop to finish what it holds (the relay its batch, the consumer its own), then cancel."""
        self.relay.request_stop()
        await self._drain()
        if self.consumer is not None:
            self.consumer.request_stop()
        for name, (_, request_stop) in self._workers.items():
            if request_stop is not None:
                request_stop()
            else:  # a loop that cannot be asked: cancel it now rather than wait for it
                for task in self._tasks:
                    if task.get_name() == name:
                        task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _drain(self) -> None:
        """With `consumer_drain_seconds`, the relay has stopped and the consumer reads on for that long what the
        other services published as they stopped; what is appended meanwhile waits in the log for the next
        start. A broker that forgets on stop what nobody read (the embedded one) then loses nothing."""
        if self.consumer is None or self.settings.consumer_drain_seconds <= 0:
            return
        relay = [task for task in self._tasks if task.get_name() == "relay"]
        if relay:
            await asyncio.wait(relay, timeout=2)
        await asyncio.sleep(self.settings.consumer_drain_seconds)

    def ready_checks(self) -> list[ReadyCheck]:
        """Each returns None when its part is ready, else `part: what is missing`: the database answers, the relay
        reaches the broker and the broker holds this service's topic, the consumer holds its partitions and has
        caught up with what they held when it started, and no background loop has stopped."""

        async def database() -> str | None:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    await conn.fetchval("SELECT 1")
            except Exception as exc:
                return f"database: unreachable ({type(exc).__name__})"
            return None

        async def relay() -> str | None:
            problem = await self._relay_problem()
            return f"relay: {problem}" if problem else None

        async def consumer() -> str | None:
            return await self.consumer.readiness() if self.consumer is not None else None

        async def workers() -> str | None:
            dead = [t.get_name() for t in self._tasks if t.done()]
            return f"workers: stopped {dead}" if dead else None

        return [database, relay, consumer, workers]

    def roles(self) -> dict[str, object]:
        """What this replica does among the service's replicas: relays (one does, elected) and which consumed
        partitions it holds (the group shares them out)."""
        held = sorted(self.consumer.consumer.assignment()) if self.consumer is not None else []
        return {
            "relay": "active" if self.relay.active else "standby",
            "partitions": [f"{tp.topic}[{tp.partition}]" for tp in held],
        }

    async def flow(self) -> dict[str, object]:
        """How far behind the flow is, for /readyz: the log positions this service's relay has not published yet
        (while it relays: a restart, a republish of the whole log in progress show here), and, per consumed topic,
        the messages this replica's consumer has not handled yet on its partitions."""
        figures: dict[str, object] = {}
        if self.relay.active:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    figures["relay_behind"] = await conn.fetchval(_RELAY_BEHIND)
            except Exception:  # the database check says why
                figures["relay_behind"] = None
        if self.consumer is not None:
            lag: dict[str, int] = {}
            for tp, behind in self.consumer.lag().items():
                lag[tp.topic] = lag.get(tp.topic, 0) + behind
            figures["consumer_lag"] = dict(sorted(lag.items()))
        return figures

    async def _relay_problem(self) -> str | None:
        if not self.relay.connected:
            # a slow connect goes on in the background rather than being cut halfway (its outcome is read
            # there, so an error after the wait is not reported as never retrieved)
            connecting = asyncio.ensure_future(self.relay.ensure_started())
            connecting.add_done_callback(lambda task: task.cancelled() or task.exception())
            try:
                await asyncio.wait_for(asyncio.shield(connecting), 3)
            except Exception as exc:
                return f"broker unreachable ({type(exc).__name__})"
        if not self.relay.healthy and self.relay.backlog_seen:  # `healthy` is only set again by a publish
            return f"publishing fails ({self.relay.backlog_seen} waiting)"
        return await broker_problem(self.relay.producer, [self.store.topic])
