"""The consumer runner: a partition's fetched batch applied set-wise in one transaction, recorded whole in the inbox.

The fast path takes the whole batch at once: one statement records every message in the inbox (a redelivered
message finds its event id there and has no second effect), the read models take the batch set-wise, and a
handler that takes a batch (`batch_handler`) loads what the batch needs in one query, decides in memory and
appends once. Offsets are committed after the transaction. If anything in the batch fails, the batch rolls back
and is applied again message by message, each under its own savepoint: a message that breaks a rule rolls back
alone and goes to `<topic>.dlq` with the error in its headers, and the consumer carries on. Lost database
connections are not the message's fault: those are retried until the database is back; nor is a transaction
PostgreSQL broke off for a conflict with another (a deadlock, a serialization failure): retried until it passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeAlias
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from shared import metrics
from shared.database import DATABASE_UNAVAILABLE, TRANSACTION_CONFLICT
from shared.envelope import Envelope, MalformedMessageError
from shared.errors import DomainError
from shared.projections import Projection, apply_batch, batch_handler, takes_batch
from shared.store import EventStore, Recorded, entry_from_envelope, wire_name
from shared.telemetry import continued, tracer

__all__ = ["BatchHandler", "ConsumerRunner", "Handler", "batch_handler", "check_source", "dead_letter_reason"]

log = logging.getLogger("shared.consumer")

Handler = Callable[[asyncpg.Connection, Recorded], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, Sequence[Recorded]], Awaitable[None]]
Message: TypeAlias = ConsumerRecord[bytes, bytes]


async def call_handler(handler: Handler | BatchHandler, conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    """A `batch_handler` takes the batch's entries at once (one message is a batch of one); another, one by one."""
    if takes_batch(handler):
        await handler(conn, entries)  # type: ignore[arg-type]
    else:
        for entry in entries:
            await handler(conn, entry)  # type: ignore[arg-type]


# a batch into the inbox in one statement, positions in message order; the event ids seen before are not applied
# again (`fresh` is false). A copy of a message whose row kept no envelope, when this release keeps its kind, fills it
# in (a new projection's events, republished by their source, are there for its rebuild) and is still not applied.
_INBOX = """
WITH pos AS (SELECT allocate_positions($1, $2) AS first)
INSERT INTO inbox AS i (position, source, event_id, event_type, topic, kafka_partition, kafka_offset, source_position,
                        envelope)
SELECT pos.first + t.i - 1, t.source, t.event_id, t.event_type, $3, $4, t.kafka_offset, t.source_position, t.envelope
FROM pos, unnest($5::text[], $6::uuid[], $7::text[], $8::bigint[], $9::bigint[], $10::jsonb[])
     WITH ORDINALITY AS t(source, event_id, event_type, kafka_offset, source_position, envelope, i)
ON CONFLICT (source, event_id) DO UPDATE SET envelope = excluded.envelope
    WHERE i.envelope IS NULL AND excluded.envelope IS NOT NULL
RETURNING position, source, event_id, xmax = 0 AS fresh
"""

# source -> the event names whose envelopes the inbox keeps for a read of the service's own beyond its projections;
# None keeps all of that source's
InboxKeeps = Mapping[str, frozenset[str] | None]

# failures that retrying cannot mend: straight to the dead-letter topic. asyncpg.DataError is PostgreSQL's
# class 22 and asyncpg's own refusal of a parameter: a value of the wrong type, a \u0000 that jsonb refuses
PERMANENT = (MalformedMessageError, ValidationError, DomainError, ValueError, KeyError, TypeError, asyncpg.DataError)


# a platform service's topic (`[prefix.]union.<service>.v<N>`) carries that service's events only
_SERVICE_TOPIC = re.compile(r"(?:^|\.)union\.([a-z]+)(?:\.restricted)?\.v\d+$")


def read(message: Message) -> Envelope:
    """A message as an envelope, parsed once and checked against its topic; raises if the message is at fault."""
    envelope = Envelope.from_kafka(list(message.headers), message.value)
    check_source(message.topic, envelope.source)
    return envelope


def check_source(topic: str, source: str) -> None:
    """Refuse an event on a topic its source does not own: a service's topic carries only that service's
    events, and any other topic (the regional one) none that claim a platform service as their source.
    Write ACLs keep this true on the broker; this keeps it true in every consumer."""
    owner = _SERVICE_TOPIC.search(topic)
    if owner is not None and source != f"/union/{owner.group(1)}":
        raise ValueError(f"{source} does not publish on {topic}: only /union/{owner.group(1)} does")
    if owner is None and source.startswith("/union/"):
        raise ValueError(f"{source} is a platform service; it does not publish on {topic}")


class ConsumerRunner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        handlers: Mapping[str, Handler | BatchHandler],
        projections: Sequence[Projection] = (),
        *,
        group_id: str,
        max_retries: int = 3,
        retry_delay: float = 0.2,
        connect_producer: Callable[[], Awaitable[None]] | None = None,
        remake: Callable[[], AIOKafkaConsumer] | None = None,
        inbox_keeps: InboxKeeps | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.consumer = consumer
        self.producer = producer
        self.handlers = handlers  # by topic
        self.projections = projections
        self.inbox_keeps = inbox_keeps or {}
        self._kept: dict[tuple[str, str], bool] = {}
        self.group_id = group_id
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        # the producer is shared with the relay, which connects it only once it has something to publish
        self.connect_producer = connect_producer or producer.start
        # an aiokafka consumer cannot start again once stopped: a supervised restart needs a new one
        self.remake = remake
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.conflicts = 0  # transactions PostgreSQL broke off for a conflict with another, each tried again
        self.positions: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self.catch_up_to: dict[TopicPartition, int] = {}  # readiness: each partition's end at its first fetch
        self.caught_up = False  # readiness: once true, lag under load is a metric, not unreadiness

    def lag(self) -> dict[TopicPartition, int]:
        """Messages behind the partition's end, from our own positions and the end the broker last reported; a
        partition nothing was handled on since this process started is left out (where it stands is not known
        here; with a backlog its first batch comes within the fetch wait)."""
        lags = {}
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is not None and tp in self.positions:
                lags[tp] = max(0, end - self.positions[tp])
        return lags

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        # what this replica handled is only known of the partitions it holds: a rebalance's revocation forgets it
        self.consumer.subscribe(topics=sorted(self.consumer.subscription()), listener=_Forget(self))
        while not self._stopping.is_set():
            try:
                await self.consumer.start()
                break
            except Exception as exc:
                log.warning("consumer: broker unreachable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, messages in batches.items():
                    await self.handle_batch(messages)
                    self.positions[tp] = messages[-1].offset + 1
                    await self._commit(tp, messages[-1].offset + 1)
        finally:
            await self.consumer.stop()
            self.positions.clear()
            self.catch_up_to.clear()
            if self.remake is not None and not self._stopping.is_set():
                self.consumer = self.remake()  # what was handled but not committed is redelivered: the inbox dedups

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit a handled batch's offset. A partition that moved to another replica meanwhile (a rebalance while
        the batch was applied) cannot be committed here, and need not be: its new holder gets the batch again and
        the inbox has it already. The consumer carries on with what it holds."""
        try:
            await self.consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            self.positions.pop(tp, None)
            log.info("consumer: the partition moved before its offset was committed", extra={"error": repr(exc)})

    async def handle_batch(self, messages: Sequence[Message]) -> None:
        """A partition's batch: set-wise in one transaction; on any failure, one message at a time under
        savepoints (`_apply_each`), and if that too fails as a whole, one transaction per message (`handle`)."""
        readable: list[tuple[Message, Envelope]] = []
        poisoned: list[tuple[Message, BaseException]] = []
        for message in messages:
            try:
                readable.append((message, read(message)))
            except Exception as exc:  # reading touches nothing but the message: whatever fails, the message is at fault
                poisoned.append((message, exc))
        if readable:
            try:
                applied, duplicates = await self._apply_set(readable)
            except Exception as exc:
                log.info("consumer: a batch of %d failed set-wise (%r); one message at a time", len(readable), exc)
                await self._apply_each(readable)
            else:
                self._count(readable[0][0].topic, applied, duplicates)
        for message, error in poisoned:
            await self.dead_letter(message, error, attempts=1)

    async def _apply_set(self, batch: Sequence[tuple[Message, Envelope]]) -> tuple[int, int]:
        """The batch in one transaction: one inbox statement, the read models set-wise, the handler once."""
        topic = batch[0][0].topic
        async with self.pool.acquire() as conn, conn.transaction():
            entries = await self._record(conn, batch)
            with self._span(topic, len(batch), batch[0][1]):
                handler = self.handlers.get(topic)
                if handler is not None and entries:
                    await call_handler(handler, conn, entries)
                await apply_batch(self.projections, conn, entries)
        return len(entries), len(batch) - len(entries)

    async def _record(self, conn: asyncpg.Connection, batch: Sequence[tuple[Message, Envelope]]) -> list[Recorded]:
        """Record the messages in the inbox; the entries of those seen for the first time, in order."""
        message = batch[0][0]
        # the first copy of each message (the statement may meet a row only once); a second copy is a duplicate
        firsts: dict[tuple[str, UUID], tuple[Message, Envelope]] = {}
        for m, e in batch:
            firsts.setdefault((e.source, e.id), (m, e))
        unique = list(firsts.values())
        rows = await conn.fetch(
            _INBOX,
            self.store.namespace,
            len(unique),
            message.topic,
            message.partition,
            [e.source for _, e in unique],
            [e.id for _, e in unique],
            [e.type for _, e in unique],
            [m.offset for m, _ in unique],
            [int(e.position) if e.position else None for _, e in unique],
            [e.model_dump_json() if self.keeps(e) else None for _, e in unique],
        )
        positions = {(r["source"], r["event_id"]): r["position"] for r in rows if r["fresh"]}
        return [
            entry_from_envelope(positions[(envelope.source, envelope.id)], envelope)
            for _, envelope in unique
            if (envelope.source, envelope.id) in positions
        ]

    async def _apply_each(self, batch: Sequence[tuple[Message, Envelope]]) -> None:
        """One transaction, each message under its own savepoint: a message that breaks a rule rolls back alone
        and goes to the DLQ once the batch committed. Anything else (the database gone, a transient error) rolls
        the whole batch back, which is then handled one message at a time with retries, as `handle` does."""
        applied = duplicates = 0
        poisoned: list[tuple[Message, BaseException]] = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                for message, envelope in batch:
                    try:
                        async with conn.transaction():  # a savepoint: this message alone rolls back
                            if await self._apply_in(conn, message, envelope):
                                applied += 1
                            else:
                                duplicates += 1
                    except PERMANENT as exc:
                        poisoned.append((message, exc))
        except Exception as exc:
            log.info("consumer: a batch of %d failed together (%r); one at a time", len(batch), exc)
            for message, envelope in batch:
                await self.handle(message, envelope)
            return
        self._count(batch[0][0].topic, applied, duplicates)
        for message, error in poisoned:
            await self.dead_letter(message, error, attempts=1)

    def _span(self, topic: str, count: int, first: Envelope) -> contextlib.ExitStack:
        """One span per batch, continuing the trace of its first message (the others are linked by their ids)."""
        stack = contextlib.ExitStack()
        stack.enter_context(continued(first.traceparent))
        stack.enter_context(
            tracer("shared.consumer").start_as_current_span(
                f"{topic} process",
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.consumer.group.name": self.group_id,
                    "messaging.message.id": str(first.id),
                    "messaging.batch.message_count": count,
                },
            )
        )
        return stack

    def _count(self, topic: str, applied: int, duplicates: int) -> None:
        self.handled += applied
        self.duplicates += duplicates
        if applied:
            metrics.messages_handled.add(applied, {"topic": topic, "group": self.group_id})

    async def handle(self, message: Message, envelope: Envelope | None = None) -> None:
        """One message in its own transaction, retried while the database is away, dead-lettered when it breaks
        a rule or keeps failing."""
        if envelope is None:
            try:
                envelope = read(message)
            except Exception as exc:  # reading touches nothing but the message: whatever fails, the message is at fault
                await self.dead_letter(message, exc, attempts=1)
                return
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    applied = await self._apply_in(conn, message, envelope)
                self._count(message.topic, int(applied), int(not applied))
            except DATABASE_UNAVAILABLE as exc:
                log.warning("consumer: database unavailable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
            except TRANSACTION_CONFLICT as exc:
                # not the message's fault (two replicas' batches met in the database): never dead-lettered for it
                self.conflicts += 1
                log.warning("consumer: transaction conflict, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(min(self.retry_delay * attempts, 2.0))
            except PERMANENT as exc:
                await self.dead_letter(message, exc, attempts)
                return
            except Exception as exc:
                if attempts > self.max_retries:
                    await self.dead_letter(message, exc, attempts)
                    return
                await asyncio.sleep(self.retry_delay * attempts)
            else:
                return

    def keeps(self, envelope: Envelope) -> bool:
        """Whether the inbox keeps this message's envelope: a projection of this service handles it (a rebuild replays
        it) or the service declared a read of its own (`inbox_keeps`). Every other message keeps its row alone."""
        key = (envelope.source, wire_name(envelope.type))
        kept = self._kept.get(key)
        if kept is None:
            names = self.inbox_keeps.get(key[0], frozenset())
            kept = names is None or key[1] in names or any(p.lookup(*key) is not None for p in self.projections)
            if len(self._kept) < 10_000:  # the kinds a topic carries are few; a hostile one's are not remembered
                self._kept[key] = kept
        return kept

    async def _apply_in(self, conn: asyncpg.Connection, message: Message, envelope: Envelope) -> bool:
        """Record one message in the inbox and apply it; False for a redelivery (already in the inbox)."""
        with self._span(message.topic, 1, envelope):
            entries = await self._record(conn, [(message, envelope)])
            if not entries:
                return False
            handler = self.handlers.get(message.topic)
            if handler is not None:
                await call_handler(handler, conn, entries)
            await apply_batch(self.projections, conn, entries)
        return True

    async def dead_letter(self, message: Message, error: BaseException, attempts: int) -> None:
        await self.connect_producer()
        reason = f"{type(error).__name__}: {error}"[:2000]
        headers = [
            *list(message.headers),
            ("dlq_error", reason.encode(errors="backslashreplace")),  # a lone surrogate must not stop the consumer
            ("dlq_topic", message.topic.encode()),
            ("dlq_partition", str(message.partition).encode()),
            ("dlq_offset", str(message.offset).encode()),
            ("dlq_consumer_group", self.group_id.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(f"{message.topic}.dlq", message.value, key=message.key, headers=headers)
        self.dead_lettered += 1
        metrics.messages_dead_lettered.add(1, {"topic": message.topic, "group": self.group_id})
        log.error(
            "consumer: message dead-lettered", extra={"topic": message.topic, "offset": message.offset, "error": reason}
        )

    async def readiness(self) -> str | None:
        """None once the consumer holds its partitions and has handled what each held when it first fetched it;
        else what it waits for. Ends come from fetch responses (`highwater`): Tansu's ListOffsets answers too
        low after a multi-record batch."""
        if self.caught_up:
            return None
        assigned = self.consumer.assignment()
        if not assigned:
            return "consumer: no partitions assigned yet"
        waiting = []
        for tp in sorted(assigned):
            end = self.catch_up_to.get(tp)
            if end is None:
                end = self.consumer.highwater(tp)
                if end is None:
                    waiting.append(f"{tp.topic}[{tp.partition}] not fetched yet")
                    continue
                self.catch_up_to[tp] = end
            handled = self.positions.get(tp)
            if handled is None:  # nothing handled since start: where the group's committed offset left it
                try:
                    committed = await asyncio.wait_for(self.consumer.committed(tp), 2)
                except Exception:
                    waiting.append(f"{tp.topic}[{tp.partition}] committed offset unknown")
                    continue
                handled = max(committed or 0, 0)
            if handled < end:
                waiting.append(f"{tp.topic}[{tp.partition}] {end - handled} behind")
        if waiting:
            return "consumer: " + ", ".join(waiting)
        self.caught_up = True
        return None


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    """Revoked partitions: what was handled and awaited of them is forgotten (another replica may move them on)."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.runner.positions.pop(tp, None)
            self.runner.catch_up_to.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


def dead_letter_reason(headers: Sequence[tuple[str, bytes]]) -> str | None:
    return next((v.decode() for k, v in headers if k == "dlq_error"), None)
