"""The event store against the real PostgreSQL: versions, ordering, hash chain, append-only."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from devstack.probe import CounterIncremented
from shared.errors import ConcurrencyError
from shared.runtime import Runtime
from shared.store import Metadata, Stream
from tests.conftest import Stack
from tests.support.kafka import read_topic
from tests.support.writers import write_concurrently

META = Metadata(actor="test")


async def append_one(kernel: Runtime, counter: uuid.UUID, by: int = 1) -> None:
    async with kernel.pool.acquire() as conn, conn.transaction():
        stream = await kernel.store.load(conn, f"counter-{counter}")
        await kernel.store.append(conn, stream, [CounterIncremented(counter_id=counter, by=by)], META)


async def test_two_appends_at_the_same_version_one_wins(kernel: Runtime) -> None:
    counter = uuid.uuid4()
    await append_one(kernel, counter)
    start = asyncio.Event()

    async def contender(by: int) -> str:
        async with kernel.pool.acquire() as conn, conn.transaction():
            stream = await kernel.store.load(conn, f"counter-{counter}")
            await start.wait()
            try:
                await kernel.store.append(conn, stream, [CounterIncremented(counter_id=counter, by=by)], META)
            except ConcurrencyError:
                return "conflict"
            return "won"

    tasks = [asyncio.create_task(contender(by)) for by in (10, 20)]
    await asyncio.sleep(0.1)
    start.set()
    assert sorted(await asyncio.gather(*tasks)) == ["conflict", "won"]
    async with kernel.pool.acquire() as conn:
        stream = await kernel.store.load(conn, f"counter-{counter}")
    assert stream.version == 2


async def test_no_skipped_events_with_16_writers_and_a_reader(kernel: Runtime) -> None:
    seen: list[tuple[int, uuid.UUID]] = []
    writers_done = asyncio.Event()

    async def reader() -> None:
        after = 0
        while True:
            done = writers_done.is_set()  # before the read: an empty read after it means nothing is left
            batch = await kernel.store.read_all(after, limit=500)
            seen.extend((e.position, e.event_id) for e in batch)
            if batch:
                after = batch[-1].position
            elif done:
                return
            else:
                await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    written = await write_concurrently(kernel, 4)
    writers_done.set()
    await reading
    positions = [p for p, _ in seen]
    assert positions == sorted(positions)
    assert len({i for _, i in seen}) == len(seen), "an event was read twice"
    assert {i for _, i in seen} == set(written), "the reader skipped an event"
    assert len(written) > 1000


async def test_upcasts_old_payloads_on_read(kernel: Runtime) -> None:
    counter = uuid.uuid4()
    async with kernel.pool.acquire() as conn:
        # a v1 row as an older release wrote it (hash chain included)
        from shared.store import GENESIS, chain_hash  # noqa: PLC0415

        data = {"counter_id": str(counter), "amount": 5}
        event_id = uuid.uuid4()
        digest = chain_hash(GENESIS, f"counter-{counter}", 1, event_id, "CounterIncremented", 1, data)
        await conn.execute(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, data, metadata,"
            " recorded_at, hash) VALUES (nextval('log_position'), $1, 1, $2, 'CounterIncremented', 1, $3, '{}',"
            " now(), $4)",
            f"counter-{counter}",
            event_id,
            json.dumps(data),
            digest,
        )
        stream = await kernel.store.load(conn, f"counter-{counter}")
    event = stream.events[0].event
    assert isinstance(event, CounterIncremented)
    assert event.by == 5
    assert await kernel.store.verify() == []


async def test_update_and_delete_of_events_are_refused(kernel: Runtime) -> None:
    await append_one(kernel, uuid.uuid4())
    async with kernel.pool.acquire() as conn:
        for sql in ("UPDATE events SET data = '{}'", "DELETE FROM events", "TRUNCATE events CASCADE"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)


async def test_verify_reports_a_tampered_event(kernel: Runtime) -> None:
    counter = uuid.uuid4()
    for by in (1, 2, 3):
        await append_one(kernel, counter, by)
    assert await kernel.store.verify() == []
    async with kernel.pool.acquire() as conn, conn.transaction():
        # a privileged operator goes around the trigger
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(
            "UPDATE events SET data = jsonb_set(data, '{by}', '200') WHERE stream_id = $1 AND version = 2",
            f"counter-{counter}",
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    async with kernel.pool.acquire() as conn:
        position = await conn.fetchval(
            "SELECT position FROM events WHERE stream_id = $1 AND version = 2", f"counter-{counter}"
        )
    assert await kernel.store.verify() == [f"counter-{counter}: event 2 (position {position}) does not match its hash"]


async def test_verify_pages_through_streams_and_resumes_after_the_last_one_it_checked(kernel: Runtime) -> None:
    counters = sorted((uuid.uuid4() for _ in range(3)), key=lambda c: f"counter-{c}")
    for counter in counters:
        for by in (1, 2, 3):
            await append_one(kernel, counter, by)
    first, middle, last = (f"counter-{c}" for c in counters)
    async with kernel.pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute("UPDATE events SET data = jsonb_set(data, '{by}', '7') WHERE stream_id = $1", first)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    said: list[tuple[str, int]] = []
    # pages of 2 end inside streams: each page's link to the last is checked across the page boundary
    problems = await kernel.store.verify(progress=lambda stream, n: said.append((stream, n)), page=2)
    assert len(problems) == 3
    assert all(p.startswith(f"{first}: event") for p in problems)
    assert said[-1] == (last, 9)
    assert [s for s, _ in said] == sorted(s for s, _ in said)  # only streams wholly checked, in order
    # a run stopped after the first stream resumes after it: the rest is intact
    assert await kernel.store.verify(after_stream=first, page=2) == []
    assert await kernel.store.verify(after_stream=middle) == []


async def test_private_fields_stay_off_the_topic(kernel: Runtime, topics: list[str], stack: Stack) -> None:
    counter = uuid.uuid4()
    async with kernel.pool.acquire() as conn, conn.transaction():
        await kernel.store.append(
            conn, Stream(f"counter-{counter}"), [CounterIncremented(counter_id=counter, by=1, secret="s3cr3t")], META
        )
    assert await kernel.relay.publish_batch() == 1
    [record] = await read_topic(stack.bootstrap, topics[0], expect=1)
    async with kernel.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT data FROM events")
    assert json.loads(record.value) == {"counter_id": str(counter), "by": 1, "note": ""}
    assert b"s3cr3t" not in record.value
    assert all(b"s3cr3t" not in v for _, v in record.headers)
    assert "s3cr3t" in stored  # the store keeps it (services encrypt such fields before appending)
