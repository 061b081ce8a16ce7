"""The event store's contract, run against the PostgreSQL store and the in-memory one (shared.memstore) alike:
what a handler may count on, whichever store it is given. Handlers' unit tests use the in-memory one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.probe import CounterIncremented, registry
from shared.errors import ConcurrencyError, NotFoundError
from shared.events import DomainEvent
from shared.memstore import InMemoryEventStore
from shared.runtime import Runtime
from shared.store import GENESIS, Metadata, Stream, StreamStore, chain_hash

META = Metadata(actor="contract")


@dataclass
class Subject:
    store: StreamStore
    session: Callable[[], AbstractAsyncContextManager[Any]]  # a connection in a transaction, or None in memory


@pytest.fixture(params=["postgres", "memory"])
async def subject(request: pytest.FixtureRequest, kernel: Runtime) -> AsyncIterator[Subject]:
    if request.param == "memory":
        yield Subject(InMemoryEventStore(registry), lambda: nullcontext(None))
        return

    @asynccontextmanager
    async def session() -> AsyncIterator[Any]:
        async with kernel.pool.acquire() as conn, conn.transaction():
            yield conn

    yield Subject(kernel.store, session)


def counted(counter: uuid.UUID, *amounts: int) -> list[DomainEvent]:
    return [CounterIncremented(counter_id=counter, by=by) for by in amounts]


def total(events: list[DomainEvent]) -> int:
    return sum(e.by for e in events if isinstance(e, CounterIncremented))


async def test_appended_events_read_back_in_order_with_versions_positions_and_a_hash_chain(subject: Subject) -> None:
    counter = uuid.uuid4()
    stream_id = f"counter-{counter}"
    async with subject.session() as conn:
        await subject.store.append(conn, Stream(stream_id), counted(counter, 1, 2), META)
        stream = await subject.store.load(conn, stream_id)
        await subject.store.append(conn, stream, counted(counter, 3), META)
    async with subject.session() as conn:
        stream = await subject.store.load(conn, stream_id)
    assert [e.version for e in stream.events] == [1, 2, 3]
    assert [e.data["by"] for e in stream.events] == [1, 2, 3]
    assert [e.metadata for e in stream.events] == [{"actor": "contract"}] * 3
    positions = [e.position for e in stream.events]
    assert positions == sorted(positions)
    assert len(set(positions)) == 3
    prev = GENESIS
    for e in stream.events:
        assert e.hash == chain_hash(prev, stream_id, e.version, e.event_id, e.name, e.schema_version, e.data)
        prev = e.hash


async def test_event_ids_are_time_ordered_uuid7s_in_the_order_of_the_log(subject: Subject) -> None:
    """Ids sort as the events were appended (RFC 9562 version 7), so the log's unique index on them grows at its end."""
    counter = uuid.uuid4()
    async with subject.session() as conn:
        stream = Stream(f"counter-{counter}")
        await subject.store.append(conn, stream, counted(counter, 1, 2, 3), META)
        await subject.store.append(conn, stream, counted(counter, 4), META)
        stored = await subject.store.load(conn, stream.stream_id)
    ids = [uuid.UUID(str(e.event_id)) for e in stored.events]
    assert [i.version for i in ids] == [7] * 4
    assert ids == sorted(ids)
    assert len(set(ids)) == 4


async def test_a_stale_stream_is_a_conflict_and_nothing_of_the_batch_is_written(subject: Subject) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    async with subject.session() as conn:
        stale = await subject.store.load(conn, f"counter-{a}")
        await subject.store.append(conn, Stream(f"counter-{a}"), counted(a, 1), META)
    with pytest.raises(ConcurrencyError):
        async with subject.session() as conn:
            await subject.store.append_streams(
                conn, [(Stream(f"counter-{b}"), counted(b, 5)), (stale, counted(a, 7))], META
            )
    async with subject.session() as conn:
        streams = await subject.store.load_many(conn, [f"counter-{a}", f"counter-{b}"])
    assert total(streams[f"counter-{a}"].domain_events()) == 1
    assert streams[f"counter-{b}"].events == []


async def test_one_batch_may_append_to_a_stream_twice_in_order(subject: Subject) -> None:
    counter = uuid.uuid4()
    stream = Stream(f"counter-{counter}")
    async with subject.session() as conn:
        recorded = await subject.store.append_streams(
            conn, [(stream, counted(counter, 1)), (stream, counted(counter, 2, 3), Metadata(actor="other"))], META
        )
    assert [(r.version, r.data["by"], r.metadata["actor"]) for r in recorded] == [
        (1, 1, "contract"),
        (2, 2, "other"),
        (3, 3, "other"),
    ]
    assert stream.version == 3  # the caller's stream moved with the append


async def test_folding_and_the_404_for_a_stream_that_holds_nothing_of_the_kind(subject: Subject) -> None:
    counter = uuid.uuid4()
    stream_id = f"counter-{counter}"
    async with subject.session() as conn:
        await subject.store.append(conn, Stream(stream_id), counted(counter, 4, 5), META)
        stream, folded = await subject.store.load_folded(conn, stream_id, total)
        assert (stream.version, folded) == (2, 9)
        _, as_int = await subject.store.load_existing(conn, stream_id, total, int, "counter", counter)
        assert as_int == 9
        with pytest.raises(NotFoundError):
            await subject.store.load_existing(conn, f"counter-{uuid.uuid4()}", lambda _: None, int, "counter", 0)
        unknown = await subject.store.load_many(conn, [f"counter-{uuid.uuid4()}"])
    assert [s.events for s in unknown.values()] == [[]]
