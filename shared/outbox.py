"""The outbox relay: publishes committed outbox rows to Kafka in position order, then deletes them.

One relay is active per service schema (a session advisory lock elects it). It wakes when this process
appends and on NOTIFY from other processes (sent after their commits, never inside them), polls
as a fallback, and keeps every row while the broker is down: delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.store import EventStore
from shared.telemetry import continued, tracer

log = logging.getLogger("shared.outbox")


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        producer: AIOKafkaProducer,
        *,
        poll_interval: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self.pool = pool
        self.store = store
        self.producer = producer
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.published = 0
        self.connected = False
        self.healthy = True
        self.backlog_seen = 0  # rows found waiting at the last look (a floor when a full batch was found)
        self._wake = store.appended
        self._stopping = asyncio.Event()
        self._starting = asyncio.Lock()

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        conn: asyncpg.Connection = await self.pool.acquire()
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(1, hashtext($1))", self.store.schema):
                # another replica relays; stand by
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval * 4)
                if self._stopping.is_set():
                    return
            await conn.add_listener(self.store.channel, self._on_notify)
            backoff = self.poll_interval
            while not self._stopping.is_set():
                try:
                    sent = await self.publish_batch()
                    backoff = self.poll_interval
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.healthy = False
                    log.warning("outbox relay: publishing failed, will retry", extra={"error": repr(exc)})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if sent < self.batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    # woken by an append of this process: give its transaction a moment to commit
                    await asyncio.sleep(0.002)
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(self.store.channel, self._on_notify)
                await conn.execute("SELECT pg_advisory_unlock(1, hashtext($1))", self.store.schema)
            await self.pool.release(conn)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def ensure_started(self) -> None:
        """Connect the producer once; the relay and the consumer's dead-lettering share it."""
        async with self._starting:
            if not self.connected:
                await self.producer.start()
                self.connected = True

    async def publish_batch(self) -> int:
        async with self.pool.acquire() as conn:
            safe = await self.store.safe_position(conn)
            rows = await conn.fetch(
                "SELECT position, topic, key, headers, value FROM outbox WHERE position <= $1 "
                "ORDER BY position LIMIT $2",
                safe,
                self.batch_size,
            )
        self.backlog_seen = len(rows)
        if not rows:
            return 0
        await self.ensure_started()
        pending = []
        for row in rows:
            headers = [(k, v.encode()) for k, v in json.loads(row["headers"])]
            traceparent = next((v.decode() for k, v in headers if k == "ce_traceparent"), None)
            with (
                continued(traceparent),
                tracer("shared.outbox").start_as_current_span(
                    f"{row['topic']} publish",
                    kind=SpanKind.PRODUCER,
                    attributes={"messaging.system": "kafka", "messaging.destination.name": row["topic"]},
                ),
            ):
                headers = _with_current_traceparent(headers)
                pending.append(
                    await self.producer.send(
                        row["topic"],
                        bytes(row["value"]),
                        key=bytes(row["key"]) if row["key"] else None,
                        headers=headers,
                    )
                )
        await asyncio.gather(*pending)
        self.healthy = True
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM outbox WHERE position = ANY($1::bigint[])", [r["position"] for r in rows])
        self.published += len(rows)
        if len(rows) < self.batch_size:
            self.backlog_seen = 0
        return len(rows)

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM outbox"))


def _with_current_traceparent(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Point the message's trace context at the publish span, so the consumer's span is its child."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return headers
    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}".encode()
    return [(k, value if k == "ce_traceparent" else v) for k, v in headers] + (
        [] if any(k == "ce_traceparent" for k, _ in headers) else [("ce_traceparent", value)]
    )
