"""The consumer runner: one effect per message through redelivery and SIGKILL; poison to the DLQ."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.consumer import ConsumerRunner
from shared.envelope import Envelope
from shared.messaging import make_consumer
from shared.runtime import Runtime
from shared.settings import KernelSettings
from tests.conftest import Stack
from tests.support.kafka import produce, read_topic
from tests.support.kernel_proc import record_effect
from tests.support.procs import settings_env, start_module


def remote_event(
    counter: uuid.UUID,
    by: int = 1,
    *,
    name: str = "RemoteCounterIncremented",
    position: str | None = None,
    **extra: object,
) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/union/remote",
        type=f"union.remote.{name}.v1",
        subject=f"counter-{counter}",
        time=datetime.now(UTC),
        partitionkey=str(counter),
        position=position,
        data={"counter_id": str(counter), "by": by, **extra},
    )
    return envelope.to_kafka()


async def effects(kernel: Runtime) -> dict[uuid.UUID, int]:
    async with kernel.pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
    return {r["event_id"]: r["n"] for r in rows}


def runner(kernel: Runtime, settings: KernelSettings, group: str) -> ConsumerRunner:
    topic = settings.topic("union.remote.v1")
    return ConsumerRunner(
        kernel.pool,
        kernel.store,
        make_consumer(settings, group, [topic]),
        kernel.relay.producer,
        {topic: record_effect},
        kernel.definition.projections,
        group_id=group,
        max_retries=2,
        retry_delay=0.01,
    )


async def wait_for(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_the_same_message_twice_has_one_effect(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    message = remote_event(uuid.uuid4(), by=5)
    await produce(stack.bootstrap, topics[1], [message, message])  # a redelivery, as the broker would make it
    await kernel.relay.producer.start()
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    await consume(consuming, 2)
    assert list((await effects(kernel)).values()) == [1]
    assert consuming.duplicates == 1
    async with kernel.pool.acquire() as conn:
        assert await conn.fetchval("SELECT total FROM counter_totals") == 5
        inbox = json.loads(await conn.fetchval("SELECT envelope FROM inbox"))
    assert inbox["data"]["by"] == 5  # the whole envelope is kept
    assert inbox["type"] == "union.remote.RemoteCounterIncremented.v1"


async def test_the_inbox_keeps_the_envelopes_a_projection_reads_and_the_rows_of_the_others(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    counter = uuid.uuid4()
    # a renaming: an event of the remote source that no projection of the kernel's test service reads
    read, unread = remote_event(counter, by=2), remote_event(counter, name="RemoteCounterRenamed", position="7")
    await produce(stack.bootstrap, topics[1], [read, unread])
    await kernel.relay.producer.start()
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    await consume(consuming, 2)
    assert consuming.handled == 2  # both applied: the handler saw each once
    assert len(await effects(kernel)) == 2
    async with kernel.pool.acquire() as conn:
        rows = {
            r["event_type"]: r
            for r in await conn.fetch("SELECT event_type, envelope, source_position, kafka_offset FROM inbox")
        }
        through = await conn.fetchval("SELECT position FROM consumed_positions WHERE source = '/union/remote'")
    kept, bare = rows["union.remote.RemoteCounterIncremented.v1"], rows["union.remote.RemoteCounterRenamed.v1"]
    assert json.loads(kept["envelope"])["data"]["by"] == 2  # counter_totals reads it: a rebuild replays it
    assert bare["envelope"] is None  # nobody reads it again: its row dedups, its envelope is not kept
    assert (bare["source_position"], through) == (7, 7)  # how far the source was read needs no envelope

    # a later release reads the renaming: the source republishes, the copy fills the envelope in, applies nothing
    renamed: list[str] = []
    projection = kernel.definition.projections[0]
    projection.on("RemoteCounterRenamed", source="/union/remote")(lambda entry: renamed.append(entry.name) or [])
    try:
        await produce(stack.bootstrap, topics[1], [unread])
        again = runner(kernel, kernel_settings, f"g{unique}")
        await consume(again, 1)
        assert (again.handled, again.duplicates, renamed) == (0, 1, [])
        async with kernel.pool.acquire() as conn:
            envelope = await conn.fetchval(
                "SELECT envelope FROM inbox WHERE event_type = 'union.remote.RemoteCounterRenamed.v1'"
            )
        assert json.loads(envelope)["type"] == "union.remote.RemoteCounterRenamed.v1"
        await kernel.projections.rebuild("counter_totals")  # and the rebuild gives it to the new handler
        assert renamed == ["RemoteCounterRenamed"]
    finally:
        del projection.handlers[("/union/remote", "RemoteCounterRenamed")]
    assert len(await effects(kernel)) == 2


async def consume(consuming: ConsumerRunner, n: int) -> None:
    """Run the consumer until it has handled, deduplicated or dead-lettered `n` messages."""
    task = asyncio.create_task(consuming.run())
    try:
        await wait_for(lambda: _handled(consuming, n))
    finally:
        task.cancel()


async def _handled(consuming: ConsumerRunner, n: int) -> bool:
    return consuming.handled + consuming.duplicates + consuming.dead_lettered >= n


async def test_a_poison_message_goes_to_the_dlq_and_the_next_is_handled(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    counter = uuid.uuid4()
    malformed = (b"k", [("ce_id", b"not-a-uuid")], b"{}")
    failing = remote_event(counter, poison=True)
    good = remote_event(counter, by=3)
    # same key: same partition, so the good one comes after both bad ones
    await produce(
        stack.bootstrap,
        topics[1],
        [(b"k", malformed[1], malformed[2]), (b"k", failing[1], failing[2]), (b"k", good[1], good[2])],
    )
    await kernel.relay.producer.start()
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    await consume(consuming, 3)
    assert consuming.dead_lettered == 2
    assert len(await effects(kernel)) == 1
    dead = await read_topic(stack.bootstrap, topics[2], expect=2)
    reasons = sorted(dict(m.headers)["dlq_error"].decode() for m in dead)
    assert reasons[0].startswith("MalformedMessageError: missing CloudEvents headers")
    assert reasons[1] == "RuntimeError: this message always fails"
    assert {dict(m.headers)["dlq_attempts"] for m in dead} == {b"1", b"3"}  # bounded retries, then the DLQ
    assert all(dict(m.headers)["dlq_topic"].decode() == topics[1] for m in dead)


async def test_a_transaction_conflict_is_retried_until_it_passes_not_dead_lettered(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    """Another transaction holds what the message's handler needs for longer than the handler may wait (its lock
    is not granted: PostgreSQL breaks the handler's transaction off, as it does one side of a deadlock). Not the
    message's fault: retried, past max_retries, and applied once the other lets go."""
    blocked = remote_event(uuid.uuid4(), by=2, wait_for_lock=True)
    await produce(stack.bootstrap, topics[1], [blocked])
    await kernel.relay.producer.start()
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    async with kernel.pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock(42, 7)")
        task = asyncio.create_task(consuming.run())
        try:
            await wait_for(lambda: _conflicts(consuming, 5))  # more tries than max_retries (2) allows a failure
            assert consuming.handled == consuming.dead_lettered == 0
            await holder.execute("SELECT pg_advisory_unlock(42, 7)")
            await wait_for(lambda: _handled(consuming, 1))
        finally:
            task.cancel()
    assert consuming.dead_lettered == 0
    assert consuming.handled == 1
    assert list((await effects(kernel)).values()) == [1]


async def test_a_second_replica_takes_partitions_and_the_first_forgets_what_it_no_longer_holds(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    """What a replica handled is known only of the partitions it holds: after a rebalance gave some to another
    replica (which moves them on), the first must not measure its readiness or lag against its old positions."""
    await produce(stack.bootstrap, topics[1], [remote_event(uuid.uuid4()) for _ in range(30)])  # on every partition
    await kernel.relay.producer.start()
    first, second = runner(kernel, kernel_settings, f"g{unique}"), runner(kernel, kernel_settings, f"g{unique}")
    tasks = [asyncio.create_task(first.run())]
    try:
        await wait_for(lambda: _handled(first, 30))
        assert len(first.positions) == 3  # it held the three partitions and handled on each
        tasks.append(asyncio.create_task(second.run()))

        async def shared_out() -> bool:
            held = [r.consumer.assignment() for r in (first, second)]
            return all(held) and not held[0] & held[1] and len(held[0] | held[1]) == 3

        await wait_for(shared_out, timeout=60)
        await produce(stack.bootstrap, topics[1], [remote_event(uuid.uuid4()) for _ in range(30)])
        await wait_for(lambda: _handled_together(first, second, 60), timeout=60)
        assert set(first.positions) <= first.consumer.assignment()
        assert set(first.lag()) <= first.consumer.assignment()
        assert not any(first.lag().values())
        assert not any(second.lag().values())
    finally:
        for task in tasks:
            task.cancel()
    assert len(await effects(kernel)) == 60


async def _handled_together(a: ConsumerRunner, b: ConsumerRunner, n: int) -> bool:
    return a.handled + b.handled >= n


async def _conflicts(consuming: ConsumerRunner, n: int) -> bool:
    return consuming.conflicts >= n


async def test_a_consumer_killed_before_committing_offsets_does_not_double_effects(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    tmp_path: Path,
) -> None:
    messages = [remote_event(uuid.uuid4(), by=1) for _ in range(300)]
    await produce(stack.bootstrap, topics[1], messages)
    env = settings_env(kernel_settings, WITH_CONSUMER="1", CRASH_AFTER_HANDLED="120")
    proc = start_module("tests.support.kernel_proc", env, tmp_path / "consumer.log")
    assert await asyncio.to_thread(proc.wait, 60) == -signal.SIGKILL
    assert 120 <= sum((await effects(kernel)).values()) < 300
    env.pop("CRASH_AFTER_HANDLED")
    proc = start_module("tests.support.kernel_proc", env, tmp_path / "consumer2.log")
    try:
        await wait_for(lambda: _count_is(kernel, 300), timeout=60)
        await asyncio.sleep(1)  # anything redelivered late would show now
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    counts = await effects(kernel)
    assert len(counts) == 300
    assert set(counts.values()) == {1}


async def _count_is(kernel: Runtime, n: int) -> bool:
    return len(await effects(kernel)) >= n


async def test_a_rebuilt_projection_equals_the_live_one(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
) -> None:
    from tests.integration.test_relay import append_counters  # noqa: PLC0415

    await append_counters(kernel, 500, per_stream=7)
    await produce(stack.bootstrap, topics[1], [remote_event(uuid.uuid4(), by=i) for i in range(50)])
    await kernel.relay.producer.start()
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    await consume(consuming, 50)
    await append_counters(kernel, 21, per_stream=7)  # the log: own events, consumed messages, own events again
    async with kernel.pool.acquire() as conn:
        live = await conn.fetch("SELECT * FROM counter_totals ORDER BY counter_id")
    progress: list[tuple[int, int]] = []
    # pages of 7 cross from one table to the other and back: each page is merged from both, in position order
    replayed = await kernel.projections.rebuild(
        "counter_totals", lambda done, total: progress.append((done, total)), batch=7
    )
    async with kernel.pool.acquire() as conn:
        rebuilt = await conn.fetch("SELECT * FROM counter_totals ORDER BY counter_id")
        checkpoint = await conn.fetchval("SELECT position FROM checkpoints WHERE name = 'counter_totals'")
        last = await conn.fetchval(
            "SELECT greatest((SELECT max(position) FROM events), (SELECT max(position) FROM inbox))"
        )
    assert replayed == 571
    assert progress[-1] == (571, 571)
    assert [dict(r) for r in rebuilt] == [dict(r) for r in live]
    assert len(live) == 72 + 50 + 3
    assert checkpoint == last


class StoppedError(Exception):
    """A rebuild stopped from outside (as a kill or a lost database would stop it)."""


async def test_a_stopped_rebuild_resumes_beside_the_writing_service_and_equals_the_live_one(kernel: Runtime) -> None:
    from tests.integration.test_relay import append_counters  # noqa: PLC0415

    await append_counters(kernel, 210, per_stream=7)
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'counter_totals' ORDER BY indexname"
    async with kernel.pool.acquire() as conn:
        before = [tuple(r) for r in await conn.fetch(indexes)]

    def stop_after_three_batches(done: int, total: int) -> None:
        if done >= 3 * 7:
            raise StoppedError

    with pytest.raises(StoppedError):
        await kernel.projections.rebuild("counter_totals", stop_after_three_batches, batch=7)
    await append_counters(kernel, 70, per_stream=7)  # the service writes on meanwhile: into the live tables
    async with kernel.pool.acquire() as conn:
        live = [dict(r) for r in await conn.fetch("SELECT * FROM counter_totals ORDER BY counter_id")]
        resumed_from = await conn.fetchval(f'SELECT done FROM "{kernel.store.schema}__rebuild".rebuild_state')
    assert resumed_from == 21  # three batches kept

    replayed = await kernel.projections.rebuild("counter_totals", batch=7)
    async with kernel.pool.acquire() as conn:
        rebuilt = [dict(r) for r in await conn.fetch("SELECT * FROM counter_totals ORDER BY counter_id")]
        after = [tuple(r) for r in await conn.fetch(indexes)]
        left = await conn.fetchval("SELECT to_regnamespace($1)", f"{kernel.store.schema}__rebuild")
    assert replayed == 280 - 21  # the rest, not the whole log again
    assert rebuilt == live
    assert len(live) == 40
    assert after == before  # the new table has the old one's indexes, by their names
    assert left is None


async def test_replicas_starting_together_rebuild_once_and_a_second_rebuild_is_refused(kernel: Runtime) -> None:
    from shared.projections import RebuildRunningError  # noqa: PLC0415
    from tests.integration.test_relay import append_counters  # noqa: PLC0415

    await append_counters(kernel, 70, per_stream=7)
    async with kernel.pool.acquire() as conn:
        await conn.execute("INSERT INTO rebuild_requests (name) VALUES ('counter_totals') ON CONFLICT DO NOTHING")

    async def as_a_replica_starts() -> int:
        return await kernel.projections.rebuild("counter_totals", requested=True, batch=7)

    first, second = await asyncio.gather(as_a_replica_starts(), as_a_replica_starts())
    assert sorted([first, second]) == [0, 70]  # one replayed the log, the other found it done
    assert not await kernel.pool.fetchval("SELECT 1 FROM rebuild_requests WHERE name = 'counter_totals'")

    # an operator's rebuild while another runs is refused, not queued
    entered = asyncio.Event()

    def hold(done: int, total: int) -> None:
        entered.set()

    running = asyncio.create_task(kernel.projections.rebuild("counter_totals", hold, batch=7))
    await entered.wait()
    with pytest.raises(RebuildRunningError):
        await kernel.projections.rebuild("counter_totals")
    await running


async def test_a_consumer_that_crashed_is_restarted_with_a_new_client_and_misses_nothing(
    stack: Stack, kernel_settings: KernelSettings, topics: list[str]
) -> None:
    """Anything that escapes the message loop (here: the offset commit failing once) ends that run; the
    runtime's supervisor starts it again, which needs a fresh aiokafka consumer (a stopped one cannot start)."""
    from devstack import probe  # noqa: PLC0415

    definition = probe.definition({"union.remote.v1": record_effect})
    runtime = Runtime(definition, kernel_settings.model_copy(update={"run_consumers": True}))
    await runtime.start()
    try:
        assert runtime.consumer is not None
        first_client = runtime.consumer.consumer
        real_commit = first_client.commit
        failures = 0

        async def commit_fails_once(*args: object, **kwargs: object) -> None:
            nonlocal failures
            if failures == 0:
                failures += 1
                raise RuntimeError("the group coordinator went away")
            await real_commit(*args, **kwargs)  # type: ignore[arg-type]

        first_client.commit = commit_fails_once  # type: ignore[method-assign]
        counters = [uuid.uuid4(), uuid.uuid4()]
        await produce(stack.bootstrap, topics[1], [remote_event(counters[0], by=2)])

        async def replaced() -> bool:
            return runtime.consumer is not None and runtime.consumer.consumer is not first_client

        await wait_for(replaced)
        await produce(stack.bootstrap, topics[1], [remote_event(counters[1], by=3)])

        async def both_counted() -> bool:
            return len(await effects(runtime)) == 2

        await wait_for(both_counted, timeout=45)
        assert sorted((await effects(runtime)).values()) == [1, 1]  # the redelivered first message: no second effect
        assert failures == 1
    finally:
        await runtime.stop()
