"""The outbox relay: everything appended reaches the topic, as CloudEvents, through outages and kills."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from pathlib import Path

import confluent_kafka
import pytest
from aiokafka.errors import OutOfOrderSequenceNumber
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from devstack.probe import CounterIncremented
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Metadata, Stream
from tests.conftest import Stack
from tests.support.kafka import librdkafka, read_topic
from tests.support.procs import settings_env, start_module
from tests.support.writers import write_concurrently

META = Metadata(actor="test", correlation_id="corr-1")


async def append_counters(kernel: Runtime, n: int, per_stream: int = 10) -> list[uuid.UUID]:
    ids = []
    for start in range(0, n, per_stream):
        counter = uuid.uuid4()
        async with kernel.pool.acquire() as conn, conn.transaction():
            recorded = await kernel.store.append(
                conn,
                Stream(f"counter-{counter}"),
                [CounterIncremented(counter_id=counter, by=i) for i in range(min(per_stream, n - start))],
                META,
            )
        ids.extend(r.event_id for r in recorded)
    return ids


async def test_relay_publishes_cloudevents_in_binary_mode(kernel: Runtime, topics: list[str], stack: Stack) -> None:
    counter = uuid.uuid4()
    async with kernel.pool.acquire() as conn, conn.transaction():
        recorded = await kernel.store.append(
            conn, Stream(f"counter-{counter}"), [CounterIncremented(counter_id=counter, by=7, note="雪")], META
        )
    assert await kernel.relay.publish_batch() == 1
    assert await kernel.relay.backlog() == 0
    [record] = await read_topic(stack.bootstrap, topics[0], expect=1)
    assert record.key == str(counter).encode()
    event = from_binary_event(KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value))
    attributes = event.get_attributes()
    assert attributes["id"] == str(recorded[0].event_id)
    assert attributes["type"] == "union.kerneltest.CounterIncremented.v2"
    assert attributes["source"] == "/union/kerneltest"
    assert attributes["subject"] == f"counter-{counter}"
    assert attributes["partitionkey"] == str(counter)
    assert attributes["sequence"] == "1"
    assert attributes["correlationid"] == "corr-1"
    assert attributes["time"] == recorded[0].recorded_at
    assert event.get_data() == {"counter_id": str(counter), "by": 7, "note": "雪"}


def read_with_librdkafka(bootstrap: str, topic: str, partitions: int = 3) -> list[confluent_kafka.Message]:
    consumer = confluent_kafka.Consumer(
        {**librdkafka(bootstrap), "group.id": "independent-reader", "enable.auto.commit": False}
    )
    consumer.assign(
        [confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(partitions)]
    )
    messages = [m for m in consumer.consume(num_messages=10, timeout=5) if m.error() is None]
    consumer.close()
    return messages


async def test_an_independent_librdkafka_client_reads_the_cloudevents_headers(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
) -> None:
    # Debian's kcat (librdkafka 2.0.2) cannot pass Tansu's ApiVersions handshake; the librdkafka 2.x that
    # confluent-kafka bundles can, and it is the same C client kcat wraps.
    [event_id] = await append_counters(kernel, 1)
    await kernel.relay.publish_batch()
    [message] = await asyncio.to_thread(read_with_librdkafka, stack.bootstrap, topics[0])
    headers = {k: v.decode() for k, v in message.headers()}
    assert headers["ce_id"] == str(event_id)
    assert headers["ce_type"] == "union.kerneltest.CounterIncremented.v2"
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert json.loads(message.value())["by"] == 0


async def test_nothing_is_lost_while_the_broker_is_down(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
) -> None:
    relay = asyncio.create_task(kernel.relay.run())
    try:
        stack.broker.stop()
        ids = await append_counters(kernel, 1000)
        await asyncio.sleep(1.5)  # the relay tries, fails, keeps the rows
        assert await kernel.relay.backlog() == 1000
        stack.broker.start()  # Tansu, memory-only: topics come back empty, created again as an operator would
        await stack.create_topics(topics)
        records = await read_topic(stack.bootstrap, topics[0], expect=1000, timeout=60)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    published = [dict(r.headers)["ce_id"].decode() for r in records]
    assert set(published) == {str(i) for i in ids}
    assert await kernel.relay.backlog() == 0


async def test_a_stopped_relay_hands_its_lock_back_with_its_connection(kernel: Runtime, topics: list[str]) -> None:
    """The pool resets no session state on release, so the relay undoes its own (the lock, the LISTEN): a
    connection back in the pool still holding the lock would keep every other replica standing by."""
    sql = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1 AND objsubid = 2 AND granted"
    running = asyncio.create_task(kernel.relay.run())
    async with asyncio.timeout(10):
        while not await kernel.pool.fetch(sql):
            await asyncio.sleep(0.01)
    kernel.relay.request_stop()
    await running
    assert await kernel.pool.fetch(sql) == []


async def test_a_relay_killed_mid_publish_loses_nothing(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    tmp_path: Path,
) -> None:
    ids = await append_counters(kernel, 3000, per_stream=50)
    env = settings_env(kernel_settings)
    proc = start_module("tests.support.kernel_proc", env, tmp_path / "relay.log")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    # wait until it has published part of the backlog, then kill it without warning
    while (backlog := await kernel.relay.backlog()) == 3000 and loop.time() < deadline:
        await asyncio.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3000 - backlog > 0, "the relay never started publishing"
    proc = start_module("tests.support.kernel_proc", env, tmp_path / "relay2.log")
    try:
        records = await read_topic(stack.bootstrap, topics[0], expect=3000, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    published = [dict(r.headers)["ce_id"].decode() for r in records]
    assert set(published) == {str(i) for i in ids}  # every event, perhaps some twice (at-least-once)
    by_key: dict[bytes, list[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(int(dict(r.headers)["ce_sequence"]))
    for sequences in by_key.values():
        firsts = list(dict.fromkeys(sequences))
        assert firsts == sorted(firsts), "a stream's events were published out of order"


async def test_a_broker_that_forgot_what_it_acknowledged_gets_the_whole_log_again(
    kernel: Runtime, topics: list[str], stack: Stack
) -> None:
    """The broker restarts empty while the relay is idle: its check finds the last acknowledged record gone (twice,
    to be sure) and it publishes the log again, by itself, and says so in relay_log."""
    if stack.durable:
        pytest.skip("Apache Kafka keeps what it acknowledged across a restart: only memory-only Tansu forgets")
    ids = await append_counters(kernel, 200)
    kernel.relay.verify_interval = 0.3
    relay = asyncio.create_task(kernel.relay.run())
    try:
        await read_topic(stack.bootstrap, topics[0], expect=200)
        stack.broker.stop()
        stack.broker.start()  # memory-only: it comes back with nothing
        await stack.create_topics(topics)
        records = await read_topic(stack.bootstrap, topics[0], expect=200, timeout=60)
    finally:
        kernel.relay.request_stop()
        await relay
    assert {dict(r.headers)["ce_id"].decode() for r in records} == {str(i) for i in ids}
    logged = await kernel.pool.fetchrow("SELECT action, from_position, events, reason FROM relay_log")
    assert (logged["action"], logged["from_position"], logged["events"]) == ("republish", 1, 200)
    assert "no longer holds" in logged["reason"]


async def test_the_relay_skips_no_event_that_commits_after_a_later_one(
    kernel: Runtime, topics: list[str], stack: Stack
) -> None:
    """16 writers, some holding their transaction open so that later positions commit first, while the relay
    publishes as fast as it can: every event reaches the topic (the classic sequence gap, on the publishing side)."""
    writers_done = asyncio.Event()

    async def relay() -> None:
        while not writers_done.is_set() or await kernel.relay.backlog():
            await kernel.relay.publish_batch()

    relaying = asyncio.create_task(relay())
    written = await write_concurrently(kernel, 3)
    writers_done.set()
    await relaying
    published = await read_topic(stack.bootstrap, topics[0], expect=len(written), timeout=60)
    ids = {uuid.UUID(dict(r.headers)["ce_id"].decode()) for r in published}
    assert len(written) > 300
    assert ids == set(written), f"{len(set(written) - ids)} events never published"


async def test_a_producer_that_stopped_for_good_is_replaced_and_nothing_is_lost(
    kernel: Runtime, topics: list[str], stack: Stack
) -> None:
    """aiokafka's producer never sends again once its sender has stopped (after OutOfOrderSequenceNumber from
    brokers restarted together, on Kafka: tests/faults/test_cluster_faults.py). The relay takes a new producer and
    publishes from the last acknowledged position."""
    ids = await append_counters(kernel, 5)
    assert await kernel.relay.publish_batch() == 5
    broken = kernel.relay.producer
    # its sender stops as OutOfOrderSequenceNumber stops it: what it holds and whatever it is given fails with it
    broken._sender._message_accumulator.fail_all(OutOfOrderSequenceNumber())
    broken._sender.sender_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await broken._sender.sender_task
    more = await append_counters(kernel, 5)
    relaying = asyncio.create_task(kernel.relay.run())
    try:
        records = await read_topic(stack.bootstrap, topics[0], expect=10, timeout=30)
    finally:
        kernel.relay.request_stop()
        await relaying
    assert kernel.relay.producer is not broken
    assert kernel.relay.replaced == 1
    on_topic = {dict(r.headers)["ce_id"].decode() for r in records}
    assert {str(i) for i in ids + more} <= on_topic
    if kernel.consumer is not None:  # the consumer's dead letters go through the new one too
        assert kernel.consumer.producer is kernel.relay.producer
