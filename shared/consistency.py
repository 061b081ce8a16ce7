"""Read your writes across services: a read waits until this service has consumed another's log through a position.

Every event a platform service publishes carries its log position (the CloudEvents extension `position`), and
the inbox's trigger keeps, per topic partition, the highest position consumed (`consumed_positions`). A source's
events are spread over partitions (and over its public and restricted topics), so one consumed event at P does
not mean the others below P were consumed. "Consumed through P" is derived per partition:

- a partition whose highest consumed position is c has consumed everything of the source up to c on it
  (the relay publishes in position order, a partition keeps order, the consumer handles it in order);
- a partition on which the consumer group has committed everything the broker holds right now (asked of the
  broker, never from a cached figure) is "through" the highest position seen on any partition of the source.

So the source is consumed through min over its partitions of (c, or the highest position seen if caught up).
Its limits are in the README ("Position tokens").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence

import asyncpg

from shared.errors import DomainError
from shared.events import topic_owner
from shared.messaging import Partition, PartitionProgress
from shared.positions import Token

log = logging.getLogger("shared.consistency")

MAX_TOKENS_TEXT = 1000


def through(
    partitions: Collection[Partition], consumed: Mapping[Partition, int], caught_up: Collection[Partition]
) -> int:
    """The highest position P of one source such that every partition has consumed all of its events <= P."""
    if not partitions:
        return 0  # partitions unknown: nothing can be vouched for
    seen = max(consumed.values(), default=0)
    return min(seen if p in caught_up else consumed.get(p, 0) for p in partitions)


class Watermarks:
    """How far this service has consumed each other service's log, and waiting for it.

    Figures are shared by every request for `interval` seconds: a thousand waiting reads cost one query a tick."""

    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        namespace: int,
        topics: Sequence[str],
        progress: PartitionProgress | None,
        *,
        timeout: float,
        interval: float = 0.05,
        public_types: Sequence[str] = (),
    ) -> None:
        self.service = service
        self.public_types = list(public_types)  # own event types published on the public topic
        self.pool = pool
        self.namespace = namespace
        self.timeout = timeout
        self.interval = interval
        self.progress = progress
        self.sources: dict[str, list[str]] = {}  # the services this one consumes -> their topics (prefixed)
        for topic in topics:
            owner = topic_owner(topic)
            if owner is not None and owner != service:
                self.sources.setdefault(owner, []).append(topic)
        self._cache: dict[str, tuple[float, int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def must_wait_for(self, token: Token) -> bool:
        """Own writes are read-your-writes already; a service we do not consume cannot be behind in our read models."""
        return token.service != self.service and token.service in self.sources

    async def position(self, source: str) -> int:
        """`source` (a service name) consumed through this position, as of at most `interval` seconds ago."""
        if source not in self.sources:
            return 0
        lock = self._locks.setdefault(source, asyncio.Lock())
        async with lock:
            cached = self._cache.get(source)
            if cached is not None and time.monotonic() - cached[0] < self.interval:
                return cached[1]
            value = await self._measure(source)
            self._cache[source] = (time.monotonic(), value)
            return value

    async def _measure(self, source: str) -> int:
        topics = self.sources[source]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT topic, kafka_partition, position FROM consumed_positions WHERE source = $1 AND topic = ANY($2)",
                f"/union/{source}",
                topics,
            )
        consumed = {(r["topic"], r["kafka_partition"]): int(r["position"]) for r in rows}
        if self.progress is None:
            return 0
        try:
            partitions = await self.progress.partitions(topics)
        except Exception as exc:  # partitions unknown: nothing can be vouched for
            log.info("consistency: the broker did not list the partitions (%r)", exc)
            return 0
        seen = max(consumed.values(), default=0)
        try:
            caught_up = await self.progress.caught_up([p for p in partitions if consumed.get(p, 0) < seen])
        except Exception as exc:  # vouch only for what the inbox shows on every partition
            log.info("consistency: the broker did not say where the partitions end (%r)", exc)
            caught_up = set()
        return through(partitions, consumed, caught_up)

    async def wait(self, tokens: Sequence[Token], timeout: float | None = None) -> dict[Token, int]:
        """Wait until every token is consumed through, at most `timeout` seconds; returns those that are not,
        each with the position reached."""
        pending = [t for t in tokens if self.must_wait_for(t)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while pending:
            reached = {t: await self.position(t.service) for t in pending}
            pending = [t for t in pending if reached[t] < t.position]
            if not pending:
                break
            if loop.time() >= deadline:
                return {t: reached[t] for t in pending}
            await asyncio.sleep(min(self.interval, max(0.0, deadline - loop.time())))
        return {}

    async def head(self) -> Token:
        """A token for reads elsewhere: this service's latest event on its public topic that a reader may see now.
        Not the head of the log itself: consumed messages and unpublished events have positions too, which no
        other service ever sees, so a token naming one could never be vouched for."""
        async with self.pool.acquire() as conn:
            safe = await conn.fetchval("SELECT safe_position($1)", self.namespace)
            position = await conn.fetchval(
                "SELECT position FROM events WHERE position <= $1 AND event_type = ANY($2)"
                " ORDER BY position DESC LIMIT 1",
                safe,
                self.public_types,
            )
        return Token(self.service, int(position or 0))

    async def close(self) -> None:
        if self.progress is not None:
            await self.progress.close()


def not_caught_up(missing: Mapping[Token, int]) -> DomainError:
    behind = ", ".join(
        f"{t} (consumed through {t.service}:{reached}, {t.position - reached} behind)"
        for t, reached in sorted(missing.items())
    )
    return DomainError(
        "not_caught_up",
        f"this service has not yet consumed what the position tokens name: {behind}; retry",
        status_code=409,
        headers={"Retry-After": "1"},
    )
