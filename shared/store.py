"""The PostgreSQL event store: append with expected version, streams, the log, the hash chain."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

import asyncpg

from shared import metrics
from shared.envelope import Envelope
from shared.errors import ConcurrencyError
from shared.events import JSON, DomainEvent, EventRegistry, channel_topic  # stream-links: channel_topic
from shared.migrations import schema_namespace
from shared.positions import note_written  # stream-links: a command's answer names what it wrote

GENESIS = bytes(32)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(
    prev: bytes, stream_id: str, version: int, event_id: UUID, name: str, schema_version: int, data: JSON | str
) -> bytes:
    """SHA-256 over the previous hash and the canonical JSON of the event (`data` may be its canonical JSON)."""
    data_json = data if isinstance(data, str) else canonical_json(data)
    # canonical_json([..., data]) without serialising data twice on the append path
    body = canonical_json([stream_id, version, str(event_id), name, schema_version])[:-1] + "," + data_json + "]"
    return hashlib.sha256(prev + body.encode()).digest()


@dataclass(frozen=True)
class Recorded:
    """One entry of a service's log: its own event, or a consumed message from the inbox."""

    position: int
    stream_id: str
    version: int
    event_id: UUID
    name: str
    schema_version: int
    data: JSON
    metadata: JSON
    recorded_at: datetime
    source: str
    hash: bytes = b""
    event: DomainEvent | None = None  # decoded, for the service's own events

    @property
    def consumed(self) -> bool:
        return self.event is None


@dataclass
class Stream:
    stream_id: str
    events: list[Recorded] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.events[-1].version if self.events else 0

    @property
    def last_hash(self) -> bytes:
        return self.events[-1].hash if self.events else GENESIS


class InlineProjection(Protocol):
    async def apply(self, conn: asyncpg.Connection, entry: Recorded) -> None: ...


@dataclass(frozen=True)
class Metadata:
    actor: str = "anonymous"
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None

    def as_json(self) -> JSON:
        return {k: v for k, v in self.__dict__.items() if v is not None}


_APPEND = """
WITH pos AS (SELECT allocate_positions($1, $2) AS first),
ev AS (
    INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, data, metadata,
                        recorded_at, hash)
    SELECT pos.first + t.i - 1, t.stream_id, t.version, t.event_id, t.event_type, t.schema_version, t.data, $9, $10,
           t.hash
    FROM pos, unnest($3::text[], $4::int[], $5::uuid[], $6::text[], $7::int[], $8::jsonb[], $11::bytea[])
         WITH ORDINALITY AS t(stream_id, version, event_id, event_type, schema_version, data, hash, i)
),
ob AS (
    INSERT INTO outbox (position, topic, key, headers, value)
    SELECT pos.first + o.i - 1, o.topic, o.key,
           o.headers || jsonb_build_array(jsonb_build_array('ce_position', (pos.first + o.i - 1)::text)),
           o.value
    FROM pos, unnest($13::int[], $14::bytea[], $15::jsonb[], $16::bytea[], $12::text[])
         AS o(i, key, headers, value, topic)
)
SELECT first FROM pos
"""


class EventStore:
    """One service's store. Appends run in the caller's transaction, with outbox rows and inline projections."""

    def __init__(self, pool: asyncpg.Pool, registry: EventRegistry, *, schema: str, topic: str) -> None:
        self.pool = pool
        self.registry = registry
        self.schema = schema
        self.topic = topic
        self.namespace = schema_namespace(schema)
        self.channel = f"outbox_{schema}"
        # set after every append in this process: the relay wakes on it (NOTIFY inside the append would
        # serialise every writer's commit on the notification queue's lock)
        self.appended = asyncio.Event()
        self.inline: list[InlineProjection] = []

    async def load(self, conn: asyncpg.Connection, stream_id: str) -> Stream:
        rows = await conn.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", stream_id)
        return Stream(stream_id, [self._own(r) for r in rows])

    async def append(
        self,
        conn: asyncpg.Connection,
        stream: Stream,
        events: Sequence[DomainEvent],
        metadata: Metadata,
    ) -> list[Recorded]:
        """Append after `stream.version`; ConcurrencyError when another writer got there first."""
        return await self.append_streams(conn, [(stream, events)], metadata)

    async def append_streams(
        self,
        conn: asyncpg.Connection,
        batch: Sequence[tuple[Stream, Sequence[DomainEvent]]],
        metadata: Metadata,
    ) -> list[Recorded]:
        """Append to several streams in one statement (bulk imports): all or nothing."""
        now = datetime.now(UTC)
        meta = metadata.as_json()
        recorded: list[Recorded] = []
        data_json: list[str] = []
        outbox: list[tuple[int, bytes | None, str, bytes, str]] = []
        for stream, events in batch:
            prev, version = stream.last_hash, stream.version
            for event in events:
                version += 1
                data = event.model_dump(mode="json")
                data_json.append(canonical_json(data))
                event_id = uuid4()
                prev = chain_hash(
                    prev, stream.stream_id, version, event_id, event.event_name(), event.version, data_json[-1]
                )
                entry = Recorded(
                    0,
                    stream.stream_id,
                    version,
                    event_id,
                    event.event_name(),
                    event.version,
                    data,
                    meta,
                    now,
                    self.registry.source,
                    prev,
                    event,
                )
                recorded.append(entry)
                if event.published:
                    key, headers, value = self.envelope(entry).to_kafka()
                    topic = channel_topic(self.topic, event.channel)  # stream-links: an event's channel picks its topic
                    outbox.append((len(recorded), key, json.dumps(headers_to_json(headers)), value, topic))
        if not recorded:
            return []
        args = (
            self.namespace,
            len(recorded),
            [r.stream_id for r in recorded],
            [r.version for r in recorded],
            [r.event_id for r in recorded],
            [r.name for r in recorded],
            [r.schema_version for r in recorded],
            data_json,
            json.dumps(meta),
            now,
            [r.hash for r in recorded],
            [o[4] for o in outbox],  # stream-links: a topic per outbox row
            [o[0] for o in outbox],
            [o[1] for o in outbox],
            [o[2] for o in outbox],
            [o[3] for o in outbox],
        )
        try:
            first = await conn.fetchval(_APPEND, *args)
        except asyncpg.UniqueViolationError as exc:
            stream = batch[0][0]
            raise ConcurrencyError(stream.stream_id, stream.version) from exc
        self.appended.set()
        metrics.events_appended.add(len(recorded), {"service": self.registry.service})
        positioned = [replace(r, position=first + i) for i, r in enumerate(recorded)]
        note_written(self.registry.service, positioned)  # stream-links
        by_stream = {stream.stream_id: stream for stream, _ in batch}
        for entry in positioned:
            by_stream[entry.stream_id].events.append(entry)
        for projection in self.inline:
            for entry in positioned:
                await projection.apply(conn, entry)
        return positioned

    async def notify(self, conn: asyncpg.Connection) -> None:
        """Wake relays in other processes, after a commit made outside a running service (imports, replays)."""
        await conn.execute("SELECT pg_notify($1, '')", self.channel)

    def envelope(self, entry: Recorded) -> Envelope:
        assert entry.event is not None
        meta = entry.metadata
        private = entry.event.private_fields
        # built from values this store made itself: no validation on the append path
        return Envelope.model_construct(
            id=entry.event_id,
            source=self.registry.source,
            type=self.registry.wire_type(type(entry.event)),
            subject=entry.stream_id,
            time=entry.recorded_at,
            partitionkey=entry.event.partition_key() or entry.stream_id,
            sequence=str(entry.version),
            correlationid=meta.get("correlation_id"),
            causationid=meta.get("causation_id"),
            traceparent=meta.get("traceparent"),
            position=str(entry.position) if entry.position else None,  # stream-links (append: the SQL adds it)
            datacontenttype="application/json",
            data={k: v for k, v in entry.data.items() if k not in private},
        )

    async def safe_position(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT safe_position($1)", self.namespace))

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[Recorded]:
        """Own events after `after`, in position order, never passing one that may still commit."""
        async with self.pool.acquire() as conn:
            safe = await self.safe_position(conn)
            rows = await conn.fetch(
                "SELECT * FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3",
                after,
                safe,
                limit,
            )
        return [self._own(r) for r in rows]

    async def read_log(self, conn: asyncpg.Connection, after: int, limit: int = 1000) -> list[Recorded]:
        """The whole log, own events and consumed messages, in position order."""
        safe = await self.safe_position(conn)
        rows = await conn.fetch(
            """
            SELECT position, stream_id, version, event_id, event_type, schema_version, data, metadata,
                   recorded_at, hash, NULL::jsonb AS envelope
            FROM events WHERE position > $1 AND position <= $2
            UNION ALL
            SELECT position, NULL, NULL, event_id, event_type, NULL, NULL, NULL, received_at, NULL, envelope
            FROM inbox WHERE position > $1 AND position <= $2
            ORDER BY position LIMIT $3
            """,
            after,
            safe,
            limit,
        )
        return [
            self._own(r) if r["envelope"] is None else consumed_entry(r["position"], json.loads(r["envelope"]))
            for r in rows
        ]

    def _own(self, row: asyncpg.Record) -> Recorded:
        data = json.loads(row["data"])
        event = self.registry.decode(row["event_type"], row["schema_version"], data)
        return Recorded(
            row["position"],
            row["stream_id"],
            row["version"],
            row["event_id"],
            row["event_type"],
            row["schema_version"],
            data,
            json.loads(row["metadata"]),
            row["recorded_at"],
            self.registry.source,
            bytes(row["hash"]),
            event,
        )

    async def verify(self) -> list[str]:
        """Recompute every stream's hash chain; one line per broken link (an empty list is a pass)."""
        problems: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            prev_stream, prev_hash, prev_version = None, GENESIS, 0
            async for row in conn.cursor("SELECT * FROM events ORDER BY stream_id, version"):
                if row["stream_id"] != prev_stream:
                    prev_stream, prev_hash, prev_version = row["stream_id"], GENESIS, 0
                if row["version"] != prev_version + 1:
                    problems.append(f"{row['stream_id']}: version {row['version']} follows {prev_version}")
                expected = chain_hash(
                    prev_hash,
                    row["stream_id"],
                    row["version"],
                    row["event_id"],
                    row["event_type"],
                    row["schema_version"],
                    json.loads(row["data"]),
                )
                if expected != bytes(row["hash"]):
                    problems.append(
                        f"{row['stream_id']}: event {row['version']} (position {row['position']}) "
                        "does not match its hash"
                    )
                prev_hash, prev_version = bytes(row["hash"]), row["version"]
        return problems


def consumed_entry(position: int, envelope: JSON) -> Recorded:
    env = Envelope.model_validate(envelope)
    name = env.type.split(".")[2] if env.type.count(".") == 3 else env.type
    version = int(env.sequence) if env.sequence and env.sequence.isdigit() else 0
    return Recorded(
        position,
        env.subject or "",
        version,
        env.id,
        name,
        0,
        env.data,
        {
            "type": env.type,
            "partitionkey": env.partitionkey,
            "traceparent": env.traceparent,
            "correlation_id": env.correlationid,  # stream-links: the chain carries on through consumers
            "causation_id": env.causationid,
        },
        env.time,
        env.source,
    )


def headers_to_json(headers: list[tuple[str, bytes]]) -> list[list[str]]:
    return [[k, v.decode()] for k, v in headers]
