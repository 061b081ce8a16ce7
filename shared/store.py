"""The PostgreSQL event store: append with expected version, streams, the log, the hash chain."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from json.encoder import encode_basestring
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Protocol, TypeVar, Union, cast, get_args, get_origin
from uuid import UUID

import asyncpg
import orjson
import uuid_utils
from asyncpg.pgproto import pgproto
from pydantic import BaseModel

from shared import metrics
from shared.envelope import Envelope
from shared.errors import ConcurrencyError, NotFoundError
from shared.events import JSON, DomainEvent, EventRegistry
from shared.migrations import schema_namespace
from shared.positions import note_written

S = TypeVar("S")
T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)
Fold = Callable[[list[DomainEvent]], S]  # a domain's fold: events -> state

GENESIS = bytes(32)


_json_string = encode_basestring  # a str as json.dumps(..., ensure_ascii=False) writes it


def canonical_json(value: Any) -> str:
    """The text every hash of the chain is over: json.dumps with sorted keys, compact, UTF-8 as is.

    orjson writes the same bytes several times faster for everything but floats (its switch to exponent notation
    differs: 6.103515625e-05 against 0.00006103515625) and refuses a little that json accepts (ints beyond 64 bits,
    lone surrogates, keys that are not strings). Those go to json, the reference, so no stored chain changes
    (tests/unit/test_store_hash.py compares the two on generated values)."""
    if not _has_float(value) and (text := _sorted_orjson(value)) is not None:
        return text
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _sorted_orjson(value: Any) -> str | None:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError included: what only json writes
        return None


def event_json(event: DomainEvent, data: JSON) -> str:
    """`canonical_json(data)` of an event's `model_dump(mode="json")`, skipping the look for floats when the event's
    fields cannot hold one (`_float_free`): the append path's per-event work."""
    if _float_free(type(event)) and (text := _sorted_orjson(data)) is not None:
        return text
    return canonical_json(data)


_EXACT_LEAVES = (str, int, UUID, date, datetime, NoneType)  # bool is an int; JSON mode writes the rest as strings


@functools.cache
def _float_free(kind: Any) -> bool:
    """Whether values of this annotation are written in JSON mode without any float (so orjson writes json's bytes).
    Unknown types, Any, Decimal (a number in pydantic's JSON schema) and float itself are not."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is Annotated:
        free = _float_free(args[0])
    elif origin is Literal:
        free = all(type(v) in (str, int, bool, NoneType) for v in args)
    elif origin in (Union, UnionType, list, tuple, set, frozenset, dict, Sequence, Mapping):
        free = bool(args) and all(a is Ellipsis or _float_free(a) for a in args)
    elif not isinstance(kind, type):
        free = False
    elif issubclass(kind, Enum):
        free = all(type(m.value) in (str, int) for m in kind)
    elif issubclass(kind, BaseModel):
        free = all(_float_free(cast("Any", f.annotation)) for f in kind.model_fields.values())
    else:
        free = issubclass(kind, _EXACT_LEAVES) and not issubclass(kind, float)
    return free


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is dict:
            stack.extend(v.values())
        elif kind is list or kind is tuple:
            stack.extend(v)
        elif isinstance(v, float):
            return True
    return False


def chain_hash(
    prev: bytes, stream_id: str, version: int, event_id: UUID, name: str, schema_version: int, data: JSON | str
) -> bytes:
    """SHA-256 over the previous hash and the canonical JSON of the event (`data` may be its canonical JSON):
    `canonical_json([stream_id, version, str(event_id), name, schema_version, data])`, written out by hand so the
    append path serialises nothing twice (tests/unit/test_store_hash.py holds the two equal)."""
    data_json = data if isinstance(data, str) else canonical_json(data)
    return _link(prev, _json_string(stream_id), version, str(event_id), _json_string(name), schema_version, data_json)


@functools.cache
def _json_name(name: str) -> str:
    return _json_string(name)


def new_id() -> UUID:
    """A new id for an event, or for anything a table is keyed by that a bulk load makes many of (a member): a UUIDv7
    (RFC 9562), time-ordered, so the index grows at its right edge instead of dirtying a random page per row. Made in
    Rust (uuid_utils) as asyncpg's own UUID, a `uuid.UUID` whose `str()` is C: 0.3 µs against `uuid4()` and its
    `str()`'s 2.1 (measured), per appended event."""
    return cast("UUID", pgproto.UUID(uuid_utils.uuid7().bytes))


def _link(
    prev: bytes, stream_json: str, version: int, event_id: str, name_json: str, schema_version: int, data_json: str
) -> bytes:
    """`chain_hash` with the stream id and the event name already written as JSON strings (once per append)."""
    body = f'[{stream_json},{version},"{event_id}",{name_json},{schema_version},{data_json}]'
    return hashlib.sha256(prev + body.encode()).digest()


@dataclass(slots=True)
class Recorded:
    """One entry of a service's log: its own event, or a consumed message from the inbox. Never changed once made
    (not `frozen`: a frozen dataclass's constructor cost 1.3 µs of an append's 16 µs per event, measured)."""

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

    def read_as(self, cls: type[P]) -> P:
        """The entry as `cls`, a published-language class (published/): the service's own event already is one; a
        consumed message is decoded, and a payload that breaks the contract raises (pydantic's ValidationError: the
        consumer dead-letters it)."""
        if isinstance(self.event, cls):
            return self.event
        return cls.model_validate(self.data)


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

    def domain_events(self) -> list[DomainEvent]:
        """The stream's events as the domain folds them (those of a type this code no longer knows left out)."""
        return [e.event for e in self.events if e.event is not None]


class Project(Protocol):
    """Applies entries to the read models, in the writing transaction (shared.projections.apply_batch)."""

    async def __call__(self, conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None: ...


@dataclass(frozen=True)
class Metadata:
    actor: str = "anonymous"
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None

    def as_json(self) -> JSON:
        return {k: v for k, v in self.__dict__.items() if v is not None}


# one event on its way in: (stream_id, version, event_id, name, schema_version, data, metadata, hash, event)
Pending = tuple[str, int, UUID, str, int, JSON, JSON, bytes, DomainEvent]
# a stream and the events to append to it, with the metadata of what caused them when it is not the call's
Appending = tuple["Stream", Sequence[DomainEvent]] | tuple["Stream", Sequence[DomainEvent], Metadata]


_APPEND_ONE = """
INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at,
                    hash, partition_key)
VALUES (allocate_positions($1, 1), $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11)
RETURNING position
"""

# several rows as one JSON document, `[[stream_id, version, event_id, type, schema_version, data, metadata,
# hash (hex), partition_key], ...]`: one parameter to send instead of nine arrays of one element per row each
_APPEND = """
WITH pos AS (SELECT allocate_positions($1, $2) AS first),
ev AS (
    INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, data, metadata,
                        recorded_at, hash, partition_key)
    SELECT pos.first + t.i - 1, t.r->>0, (t.r->>1)::int, (t.r->>2)::uuid, t.r->>3, (t.r->>4)::int, t.r->5, t.r->6,
           $4, decode(t.r->>7, 'hex'), t.r->>8
    FROM pos, jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(r, i)
)
SELECT first FROM pos
"""


class StreamStore(ABC):
    """What a handler sees of a store: load streams, fold them, append with an expected version. The PostgreSQL
    store (`EventStore`) and the in-memory one (`shared.memstore`) pass the same contract tests; everything but
    the two storage steps (`load_many`, `_write`) is written once, here."""

    registry: EventRegistry
    project: Project | None = None  # the inline read models, set by the Runtime

    @property
    def source(self) -> str:
        return self.registry.source

    @abstractmethod
    async def load_many(self, conn: Any, stream_ids: Sequence[str]) -> dict[str, Stream]:
        """Several streams at once: every id gets a Stream, empty if it has no events."""

    @abstractmethod
    async def _write(
        self,
        conn: Any,
        rows: Sequence[Pending],
        data_json: list[str],
        meta_json: list[str],
        keys: list[str],
        now: datetime,
    ) -> int:
        """Store the rows, all or none, and return the position given to the first; ConcurrencyError when a
        (stream, version) is taken."""

    async def load(self, conn: Any, stream_id: str) -> Stream:
        return (await self.load_many(conn, [stream_id]))[stream_id]

    async def load_folded(self, conn: Any, stream_id: str, fold: Fold[S]) -> tuple[Stream, S]:
        """The stream and its state: its events folded by the domain's `fold`."""
        stream = await self.load(conn, stream_id)
        return stream, fold(stream.domain_events())

    async def load_existing(
        self, conn: Any, stream_id: str, fold: Fold[object], kind: type[T], what: str, key: object
    ) -> tuple[Stream, T]:
        """The stream and its state, which must be a `kind` (else 404 `what` `key`: nothing of that kind is there)."""
        stream, state = await self.load_folded(conn, stream_id, fold)
        if not isinstance(state, kind):
            raise NotFoundError(what, key)
        return stream, state

    async def append(
        self,
        conn: Any,
        stream: Stream,
        events: Sequence[DomainEvent],
        metadata: Metadata,
    ) -> list[Recorded]:
        """Append after `stream.version`; ConcurrencyError when another writer got there first."""
        return await self.append_streams(conn, [(stream, events)], metadata)

    async def append_streams(
        self,
        conn: Any,
        batch: Sequence[Appending],
        metadata: Metadata,
    ) -> list[Recorded]:
        """Append to several streams at once (imports, a consumer's batch): all or nothing. An item may carry its
        own metadata (the message that caused it); a stream may appear more than once, in order."""
        now = datetime.now(UTC)
        default_meta = metadata.as_json()
        default_meta_text = orjson.dumps(default_meta).decode()
        pending: list[Pending] = []
        data_json: list[str] = []
        meta_json: list[str] = []
        keys: list[str] = []
        heads: dict[str, tuple[bytes, int]] = {}
        for item in batch:
            stream, events = item[0], item[1]
            meta = item[2].as_json() if len(item) == 3 else default_meta
            meta_text = orjson.dumps(meta).decode() if meta is not default_meta else default_meta_text
            prev, version = heads.get(stream.stream_id, (stream.last_hash, stream.version))
            stream_json = _json_string(stream.stream_id)
            for event in events:
                version += 1
                data = event.model_dump(mode="json")
                data_json.append(event_json(event, data))
                meta_json.append(meta_text)
                event_id = new_id()
                name = event.event_name()
                prev = _link(prev, stream_json, version, str(event_id), _json_name(name), event.version, data_json[-1])
                pending.append((stream.stream_id, version, event_id, name, event.version, data, meta, prev, event))
                keys.append(event.partition_key() or stream.stream_id)  # the relay's Kafka key
            heads[stream.stream_id] = (prev, version)
        if not pending:
            return []
        first = await self._write(conn, pending, data_json, meta_json, keys, now)
        metrics.events_appended.add(len(pending), {"service": self.registry.service})
        positioned = [
            Recorded(first + i, sid, ver, eid, name, sv, data, meta, now, self.source, h, event)
            for i, (sid, ver, eid, name, sv, data, meta, h, event) in enumerate(pending)
        ]
        note_written(self.registry.service, positioned)  # read-your-writes tokens (shared.positions)
        by_stream = {item[0].stream_id: item[0] for item in batch}
        for entry in positioned:
            by_stream[entry.stream_id].events.append(entry)
        if self.project is not None:
            await self.project(conn, positioned)
        return positioned


class EventStore(StreamStore):
    """One service's store in PostgreSQL. Appends run in the caller's transaction, with the inline projections;
    the relay publishes the log itself (shared.outbox)."""

    def __init__(self, pool: asyncpg.Pool, registry: EventRegistry, *, schema: str, topic: str) -> None:
        self.pool = pool
        self.registry = registry
        self.schema = schema
        self.topic = topic
        self.namespace = schema_namespace(schema)
        self.channel = relay_channel(schema)
        # set once a transaction that appended has committed (the pool's reset hook, see `committed`): the
        # relay wakes on it. NOTIFY inside the append would serialise every writer's commit on the
        # notification queue's lock, and a wake before the commit finds nothing to publish.
        self.appended = asyncio.Event()
        self._appended_on: set[int] = set()  # ids of the connections whose transaction appended

    def committed(self, conn: object) -> None:
        """Called when `conn` goes back to the pool, so after its transaction ended: wake the relay if it
        appended (a rolled-back append wakes it for nothing, which costs one empty look)."""
        if id(conn) in self._appended_on:
            self._appended_on.discard(id(conn))
            self.appended.set()

    async def load_many(self, conn: asyncpg.Connection, stream_ids: Sequence[str]) -> dict[str, Stream]:
        streams = {stream_id: Stream(stream_id) for stream_id in stream_ids}
        rows = await conn.fetch(
            "SELECT * FROM events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version", list(streams)
        )
        for row in rows:
            streams[row["stream_id"]].events.append(self._own(row))
        return streams

    async def load(self, conn: asyncpg.Connection, stream_id: str) -> Stream:
        rows = await conn.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", stream_id)
        return Stream(stream_id, [self._own(r) for r in rows])

    async def _write(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[Pending],
        data_json: list[str],
        meta_json: list[str],
        keys: list[str],
        now: datetime,
    ) -> int:
        try:
            if len(rows) == 1:  # most commands: one row, no arrays to build, send and unpack
                (sid, version, event_id, name, schema_version, _, _, hash_, _) = rows[0]
                first: int = await conn.fetchval(
                    _APPEND_ONE, self.namespace, sid, version, event_id, name, schema_version, data_json[0],
                    meta_json[0], now, hash_, keys[0],
                )  # fmt: skip
            else:
                document = orjson.dumps(
                    [
                        (
                            sid,
                            version,
                            str(event_id),
                            name,
                            sv,
                            orjson.Fragment(data),
                            orjson.Fragment(meta),
                            h.hex(),
                            key,
                        )
                        for (sid, version, event_id, name, sv, _, _, h, _), data, meta, key in zip(
                            rows, data_json, meta_json, keys, strict=True
                        )
                    ]
                )
                first = await conn.fetchval(_APPEND, self.namespace, len(rows), document.decode(), now)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyError(rows[0][0], rows[0][1] - 1) from exc
        if conn.is_in_transaction():
            self._appended_on.add(id(_raw(conn)))  # the relay wakes when the connection comes back after the commit
        else:
            self.appended.set()  # the statement was its own transaction: committed already
        return first

    async def notify(self, conn: asyncpg.Connection) -> None:
        """Wake relays in other processes, after a commit made outside a running service (imports, replays)."""
        await conn.execute("SELECT pg_notify($1, '')", self.channel)

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
        """The whole log, own events and consumed messages, in position order. Each table is read only up to the page
        (its own LIMIT), and the two are merged: without that, every page sorted the whole rest of the log."""
        safe = await self.safe_position(conn)
        rows = await conn.fetch(
            """
            (SELECT position, stream_id, version, event_id, event_type, schema_version, data, metadata,
                    recorded_at, hash, NULL::jsonb AS envelope
             FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3)
            UNION ALL
            (SELECT position, NULL, NULL, event_id, event_type, NULL, NULL, NULL, received_at, NULL, envelope
             FROM inbox WHERE position > $1 AND position <= $2 AND envelope IS NOT NULL ORDER BY position LIMIT $3)
            ORDER BY position LIMIT $3
            """,
            after,
            safe,
            limit,
        )
        return [
            self._own(r) if r["envelope"] is None else consumed_entry(r["position"], orjson.loads(r["envelope"]))
            for r in rows
        ]

    def _own(self, row: asyncpg.Record) -> Recorded:
        data = orjson.loads(row["data"])
        event = self.registry.decode(row["event_type"], row["schema_version"], data)
        return Recorded(
            row["position"],
            row["stream_id"],
            row["version"],
            row["event_id"],
            row["event_type"],
            row["schema_version"],
            data,
            orjson.loads(row["metadata"]),
            row["recorded_at"],
            self.registry.source,
            bytes(row["hash"]),
            event,
        )

    async def verify(
        self, after_stream: str = "", progress: Callable[[str, int], None] | None = None, page: int = 5000
    ) -> list[str]:
        """Recompute every stream's hash chain; one line per broken link (an empty list is a pass).

        Streams are read in order of their id, a page at a time (each its own short read: no transaction held over
        the whole log), so a verification of a province can run beside the service and resume where it stopped:
        `progress(stream_id, events_checked)` is told after each page the last stream wholly checked, and
        `after_stream` starts after it."""
        problems: list[str] = []
        checked = 0
        prev_stream, prev_hash, prev_version = None, GENESIS, 0
        cursor: tuple[str, int] = (after_stream, 2**31 - 1)  # past every version of `after_stream`
        while True:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT position, stream_id, version, event_id, event_type, schema_version, data, hash FROM events"
                    " WHERE (stream_id, version) > ($1, $2) ORDER BY stream_id, version LIMIT $3",
                    *cursor,
                    page,
                )
            for row in rows:
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
                    orjson.loads(row["data"]),
                )
                if expected != bytes(row["hash"]):
                    problems.append(
                        f"{row['stream_id']}: event {row['version']} (position {row['position']}) "
                        "does not match its hash"
                    )
                prev_hash, prev_version = bytes(row["hash"]), row["version"]
            checked += len(rows)
            if len(rows) < page:
                if progress is not None and prev_stream is not None:
                    progress(prev_stream, checked)
                return problems
            cursor = (rows[-1]["stream_id"], rows[-1]["version"])
            if progress is not None:
                # the stream the page ended in may go on: the last one wholly checked is the one before it
                done = [r["stream_id"] for r in rows if r["stream_id"] != prev_stream]
                if done:
                    progress(done[-1], checked)


def relay_channel(schema: str) -> str:
    """The NOTIFY channel that wakes a schema's relay from another process."""
    return f"outbox_{schema}"


def _raw(conn: asyncpg.Connection) -> object:
    """The connection under a pool's proxy: what the pool's reset hook is given back."""
    return getattr(conn, "_con", None) or conn


def consumed_entry(position: int, envelope: JSON) -> Recorded:
    """A consumed message as a log entry, from the envelope kept in the inbox."""
    return entry_from_envelope(position, Envelope.model_validate(envelope))


def wire_name(wire_type: str) -> str:
    """`union.membership.MemberJoined.v1` -> `MemberJoined`; another shape of type is kept whole."""
    return wire_type.split(".")[2] if wire_type.count(".") == 3 else wire_type


def wire_sequence(sequence: str | None) -> int:
    """The event's version in its stream, from the envelope's `sequence` (0 when absent or not a number)."""
    return int(sequence) if sequence and sequence.isdigit() else 0


def entry_from_envelope(position: int, env: Envelope) -> Recorded:
    name = wire_name(env.type)
    version = wire_sequence(env.sequence)
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
            "correlation_id": env.correlationid,  # the chain carries on through consumers
            "causation_id": env.causationid,
        },
        env.time,
        env.source,
    )
