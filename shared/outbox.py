"""The relay: the log is the outbox. It publishes the service's own events to Kafka in position order and
remembers how far the broker acknowledged them.

One relay is active per service schema (a session advisory lock elects it). It reads the log gap-free (never
past an event that may still commit with a smaller position), publishes a batch, and only then moves
`relay_state.position` on: delivery is at-least-once, and consumers' inbox dedup makes a repeat harmless.
It wakes when a transaction of this process that appended has committed, and on NOTIFY from other processes
(sent after their commits, never inside them), and polls as a fallback.

Topics are a cache of the store. The relay keeps, per partition, the last offset the broker acknowledged; a
broker that acknowledges an offset at or below it, or that no longer serves the record at it (checked every
`verify_interval` while idle), has forgotten what it acknowledged (restarted empty, the topic deleted or
recreated, a disaster): the relay then publishes the whole log again, by itself, and records it in
`relay_log`. `republish(from_position)` does the same on request (unionctl republish).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.envelope import SPEC_VERSION, kafka_headers
from shared.events import UnknownEventError, channel_topic
from shared.messaging import producer_broken
from shared.store import EventStore
from shared.telemetry import continued, tracer, tracing

log = logging.getLogger("shared.outbox")

Partition = tuple[str, int]  # (topic, partition)
# asks the broker which of these records (partition -> offset) it no longer serves
Verifier = Callable[[Mapping[Partition, int]], Awaitable[set[Partition]]]

MAX_BACKOFF = 1.0  # s between tries while publishing fails
_UNPUBLISHED = 0  # relay_state.position of a log nothing of which was published yet


# the next events to publish: after the relay's position, never past one that may still commit (one round trip;
# the bounds are scalar subqueries, computed once and used as the index scan's bounds)
# Where to read from and how far is safe, then the events: two statements, so that the second's snapshot is taken
# after `safe_position` found no writer in flight below its answer. In one statement the snapshot comes first, and a
# writer that commits between it and `safe_position` is inside the bound yet invisible: skipped for good.
_BOUNDS = "SELECT (SELECT position FROM relay_state) AS after, safe_position($1) AS safe"
_NEXT = """
SELECT position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at, partition_key
FROM events
WHERE position > $1 AND position <= $2
ORDER BY position
LIMIT $3
"""

# published through $2: move on (unless a republish moved the position back meanwhile: it wins), and keep the
# offsets the broker acknowledged
_PUBLISHED = """
WITH moved AS (UPDATE relay_state SET position = $2, updated_at = now() WHERE position = $1)
INSERT INTO relay_offsets (topic, partition, last_offset, position)
SELECT * FROM unnest($3::text[], $4::int[], $5::bigint[], $6::bigint[])
ON CONFLICT (topic, partition) DO UPDATE SET last_offset = excluded.last_offset, position = excluded.position
"""


@dataclass(frozen=True)
class Acked:
    offset: int
    position: int


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        producer: AIOKafkaProducer,
        *,
        poll_interval: float = 0.5,
        batch_size: int = 500,
        verify: Verifier | None = None,
        verify_interval: float = 10.0,
        linger: float = 0.003,
        remake: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.producer = producer
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.verify = verify
        self.verify_interval = verify_interval
        self.linger = linger
        # aiokafka's producer cannot recover from some errors (shared.messaging.producer_broken): a new one takes over
        self.remake = remake
        self.producer_replaced: list[Callable[[AIOKafkaProducer], None]] = []  # who else holds the producer
        self.published = 0
        self.republished = 0  # times the whole log (or a part) was published again
        self.replaced = 0  # producers replaced after one stopped for good
        self.active = False  # holds the election: the one replica of the service that relays
        self.connected = False
        self.healthy = True
        self.backlog_seen = 0  # events found waiting at the last look (a floor when a full batch was found)
        self.acked: dict[Partition, Acked] = {}
        self._suspect: set[Partition] = set()  # missing at the last check; missing twice is forgotten
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
            self.active = True
            log.info("relay: elected; this replica publishes the log")
            await conn.add_listener(self.store.channel, self._on_notify)
            await self._load_acked()
            loop = asyncio.get_running_loop()
            backoff, verified_at = self.poll_interval, loop.time()
            while not self._stopping.is_set():
                if conn.is_closed():  # the database restarted: the lock went with it, so stand for election again
                    raise ConnectionError("the relay's lock connection was lost")
                # cleared before looking, so a commit that lands while we publish wakes the next look
                self._wake.clear()
                try:
                    sent = await self.publish_batch()
                    if sent < self.batch_size and loop.time() - verified_at >= self.verify_interval:
                        verified_at = loop.time()
                        await self.check_broker()
                    backoff = self.poll_interval
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.healthy = False
                    log.warning("relay: publishing failed, will retry", extra={"error": repr(exc)})
                    if self.remake is not None and producer_broken(self.producer, exc):
                        await self.replace_producer(exc)
                        continue  # mended: the new producer tries at once
                    # short: while the brokers are away each try already waits out the producer's request timeout
                    # (it looks for a leader meanwhile), so a longer pause would only add to the flow's way back
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if sent < self.batch_size:
                    # woken after a commit of this process (the pool's reset hook) or another's NOTIFY; then a
                    # moment for the commits right behind it, so a busy service sends batches, not single events
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    await asyncio.sleep(self.linger)
        finally:
            self.active = False
            with contextlib.suppress(Exception):
                await conn.reset()  # the lock and the LISTEN are session state: gone before the pool has it back
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    async def replace_producer(self, cause: BaseException) -> None:
        """A new producer for one that will never send again; what the old one did not get acknowledged is sent
        again from the log (consumers apply it once, through their inbox)."""
        assert self.remake is not None
        old, self.producer = self.producer, self.remake()
        self.connected = False
        self.replaced += 1
        for hand_over in self.producer_replaced:
            hand_over(self.producer)
        log.warning("relay: the producer stopped for good; a new one takes over", extra={"error": repr(cause)})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), 5)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def ensure_started(self) -> None:
        """Connect the producer once; the relay and the consumer's dead-lettering share it."""
        async with self._starting:
            if not self.connected:
                await self.producer.start()
                self.connected = True

    async def _load_acked(self) -> None:
        rows = await self.pool.fetch("SELECT topic, partition, last_offset, position FROM relay_offsets")
        self.acked = {(r["topic"], r["partition"]): Acked(r["last_offset"], r["position"]) for r in rows}

    async def publish_batch(self) -> int:
        """Publish the next events of the log; the number of log entries handled (published or kept inside)."""
        async with self.pool.acquire() as conn:
            bounds = await conn.fetchrow(_BOUNDS, self.store.namespace)
            after = bounds["after"]
            rows = await conn.fetch(_NEXT, after, bounds["safe"], self.batch_size)
        self.backlog_seen = len(rows)
        if not rows:
            self.healthy = True  # nothing waits: nothing fails
            return 0
        records = [(row["position"], record) for row in rows if (record := self._record(row)) is not None]
        if records and self.connected and self.remake is not None and producer_broken(self.producer):
            await self.replace_producer(RuntimeError("the producer's sender has stopped"))
        if records:
            await self.ensure_started()
        acks = await self._send_all(records)
        self.healthy = True
        forgotten = sorted(
            f"{md.topic}[{md.partition}] offset {md.offset} at or below {self.acked[tp].offset}"
            for _, md in acks
            if (tp := (md.topic, md.partition)) in self.acked and md.offset <= self.acked[tp].offset
        )
        if forgotten:
            await self.republish(_UNPUBLISHED, "the broker forgot what it acknowledged: " + "; ".join(forgotten))
            return len(rows)
        latest: dict[Partition, Acked] = {}
        for position, md in acks:
            latest[(md.topic, md.partition)] = Acked(md.offset, position)
        await self.pool.execute(
            _PUBLISHED,
            after,
            rows[-1]["position"],
            [tp[0] for tp in latest],
            [tp[1] for tp in latest],
            [a.offset for a in latest.values()],
            [a.position for a in latest.values()],
        )
        self.acked.update(latest)
        self.published += len(records)
        if len(rows) < self.batch_size:
            self.backlog_seen = 0
        return len(rows)

    def _record(self, row: asyncpg.Record) -> tuple[str, bytes, list[tuple[str, bytes]], bytes] | None:
        """The topic and Kafka record of an event (CloudEvents, binary mode: key, headers, value), or None for an
        event kept inside the service. An event's channel picks its topic (the restricted one, read by few)."""
        registry = self.store.registry
        try:
            cls = registry.get(row["event_type"])
        except UnknownEventError:
            raise RuntimeError(f"event type {row['event_type']} at {row['position']} is not this service's") from None
        if not cls.published:
            return None
        key, data = row["partition_key"], row["data"]
        if key is None or row["schema_version"] != cls.version:
            # upcast an older payload, or find the key of an event stored before the key was kept
            event = registry.decode(row["event_type"], row["schema_version"], orjson.loads(data))
            key = key or event.partition_key() or row["stream_id"]
            data = orjson.dumps(event.public_data()).decode()
        elif cls.private_fields:  # a current payload: only the private fields to leave out
            public = {k: v for k, v in orjson.loads(data).items() if k not in cls.private_fields}
            data = orjson.dumps(public).decode()
        meta = orjson.loads(row["metadata"])
        attributes = {
            "specversion": SPEC_VERSION,
            "id": str(row["event_id"]),
            "source": registry.source,
            "type": registry.wire_type(cls),
            "time": row["recorded_at"].isoformat(),
            "subject": row["stream_id"],
            "partitionkey": key,
            "sequence": str(row["version"]),
        }
        for name, field in (("correlationid", "correlation_id"), ("causationid", "causation_id")):
            if meta.get(field) is not None:
                attributes[name] = meta[field]
        if meta.get("traceparent"):
            attributes["traceparent"] = meta["traceparent"]
        attributes["position"] = str(row["position"])  # consumers derive "consumed through" from it (consistency.py)
        return channel_topic(self.store.topic, cls.channel), key.encode(), kafka_headers(attributes), data.encode()

    async def _send_all(
        self, records: Sequence[tuple[int, tuple[str, bytes, list[tuple[str, bytes]], bytes]]]
    ) -> list[tuple[int, Any]]:
        """Hand every record to the producer, then wait for each acknowledgement: (position, record metadata).
        When one fails, every other's outcome is still collected (none left unretrieved) before the first failure
        is raised."""
        sent: list[tuple[int, asyncio.Future[Any]]] = []
        try:
            for position, record in records:
                sent.append((position, await self._send(*record)))
        finally:
            outcomes = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        failed = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
        if failed is not None:
            raise failed
        return [(position, outcome) for (position, _), outcome in zip(sent, outcomes, strict=True)]

    async def _send(
        self, topic: str, key: bytes, headers: list[tuple[str, bytes]], value: bytes
    ) -> asyncio.Future[Any]:
        """Hand one record to the producer; the future resolves when the broker acknowledges it."""
        if not tracing():  # no span to record: the record goes as it is (its traceparent is its cause's)
            return cast("asyncio.Future[Any]", await self.producer.send(topic, value, key=key, headers=headers))
        traceparent = next((v.decode() for k, v in headers if k == "ce_traceparent"), None)
        with (
            continued(traceparent),
            tracer("shared.outbox").start_as_current_span(
                f"{topic} publish",
                kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
            ),
        ):
            return cast(
                "asyncio.Future[Any]", await self.producer.send(topic, value, key=key, headers=_traced(headers))
            )

    async def check_broker(self) -> bool:
        """Does the broker still serve the last record it acknowledged on every partition? A partition missing at
        two checks in a row has been forgotten: the log is published again. True when all is held."""
        if self.verify is None or not self.acked:
            return True
        missing = await self.verify({tp: a.offset for tp, a in self.acked.items()})
        forgotten, self._suspect = missing & self._suspect, missing
        if forgotten:
            where = ", ".join(f"{t}[{p}] offset {self.acked[(t, p)].offset}" for t, p in sorted(forgotten))
            await self.republish(_UNPUBLISHED, f"the broker no longer holds {where}")
            return False
        return not missing

    async def republish(self, from_position: int, reason: str) -> int:
        """Publish the log again from `from_position` (0: all of it); returns the number of events it covers."""
        async with self.pool.acquire() as conn, conn.transaction():
            events = await republish_from(conn, from_position, reason, forget_offsets=from_position == _UNPUBLISHED)
        if from_position == _UNPUBLISHED:
            self.acked.clear()
        self._suspect.clear()
        self.republished += 1
        log.warning("relay: publishing the log again", extra={"from_position": from_position, "events": events})
        return events

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            return int(
                await conn.fetchval("SELECT count(*) FROM events WHERE position > (SELECT position FROM relay_state)")
            )


async def republish_from(conn: asyncpg.Connection, from_position: int, reason: str, *, forget_offsets: bool) -> int:
    """Move the relay back to just before `from_position` (never forward) and record it; in the caller's transaction.
    The running relay (this process's or another's, woken by NOTIFY) takes it from there."""
    start = max(from_position, 1) - 1
    await conn.execute("UPDATE relay_state SET position = least(position, $1), updated_at = now()", start)
    if forget_offsets:
        await conn.execute("DELETE FROM relay_offsets")
    events = int(await conn.fetchval("SELECT count(*) FROM events WHERE position > $1", start))
    await conn.execute(
        "INSERT INTO relay_log (action, from_position, events, reason) VALUES ('republish', $1, $2, $3)",
        start + 1,
        events,
        reason,
    )
    return events


def _traced(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Point the message's trace context at the publish span, so the consumer's span is its child."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return headers
    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}".encode()
    return [(k, value if k == "ce_traceparent" else v) for k, v in headers] + (
        [] if any(k == "ce_traceparent" for k, _ in headers) else [("ce_traceparent", value)]
    )
