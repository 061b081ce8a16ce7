"""'Consumed through P' on a real broker and database: every partition counts, not just the one holding P.

Messages of one source are produced to chosen partitions with chosen positions, handled one by one as the
consumer would (inbox transaction, then the offset commit), and the watermark is read after each step.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.consistency import Watermarks
from shared.consumer import ConsumerRunner
from shared.envelope import Envelope
from shared.messaging import PartitionProgress
from shared.positions import Token
from shared.runtime import Runtime
from shared.settings import KernelSettings
from tests.conftest import Stack
from tests.support.kafka import options as kafka_options
from tests.support.kernel_proc import record_effect


def remote(position: int) -> Envelope:
    counter = uuid.uuid4()
    return Envelope(
        id=uuid.uuid4(),
        source="/union/remote",
        type="union.remote.RemoteCounterIncremented.v1",
        subject=f"counter-{counter}",
        time=datetime.now(UTC),
        partitionkey=str(counter),
        position=str(position),
        data={"counter_id": str(counter), "by": 1},
    )


@pytest.fixture
async def watermarks(kernel: Runtime, kernel_settings: KernelSettings, unique: str) -> AsyncIterator[Watermarks]:
    topic = kernel_settings.topic("union.remote.v1")
    progress = PartitionProgress(kernel_settings, f"g{unique}")
    marks = Watermarks("kerneltest", kernel.pool, kernel.store.namespace, [topic], progress, timeout=0.2, interval=0)
    yield marks
    await marks.close()


async def test_consumed_through_is_the_lowest_partition_and_a_drained_partition_counts_as_through(
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings: KernelSettings,
    unique: str,
    watermarks: Watermarks,
) -> None:
    topic = topics[1]  # union.remote.v1, three partitions
    producer = AIOKafkaProducer(**kafka_options(stack.bootstrap), acks="all")
    group = AIOKafkaConsumer(
        **kafka_options(stack.bootstrap), group_id=f"g{unique}", enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await producer.start()
    await group.start()
    await kernel.relay.producer.start()  # the runner's dead-letter producer (unused here)
    handler = ConsumerRunner(
        kernel.pool,
        kernel.store,
        group,
        kernel.relay.producer,
        {topic: record_effect},
        kernel.definition.projections,
        group_id=f"g{unique}",
    )
    parts = [TopicPartition(topic, p) for p in range(3)]
    group.assign(parts)

    async def send(partition: int, position: int) -> None:
        key, headers, value = remote(position).to_kafka()
        await producer.send_and_wait(topic, value, key=key, headers=headers, partition=partition)

    async def consume(partition: int) -> None:
        """Handle what the partition holds, as the consumer does: the inbox transaction, then the commit."""
        tp = parts[partition]
        batch: list[ConsumerRecord[bytes, bytes]] = []
        while not batch:
            batch = (await group.getmany(tp, timeout_ms=1000)).get(tp, [])
        for message in batch:
            await handler.handle(message)
        await group.commit({tp: batch[-1].offset + 1})

    try:
        assert await watermarks.position("remote") == 0  # nothing consumed, nothing vouched for
        await send(0, 10)
        await send(2, 11)
        await send(1, 12)
        await consume(0)
        await consume(1)
        # 10 and 12 are consumed, but partition 2 still holds a message nobody read: not even 10 is vouched for
        assert await watermarks.position("remote") == 0
        assert await watermarks.wait([Token("remote", 10)]) == {Token("remote", 10): 0}
        await consume(2)
        # every partition drained: through the highest position seen on any of them
        assert await watermarks.position("remote") == 12
        assert await watermarks.wait([Token("remote", 12), Token("kerneltest", 10**9), Token("other", 5)]) == {}
        await send(0, 13)
        # partition 0 holds an unread message again: vouched for up to what it consumed there, no further
        assert await watermarks.position("remote") == 10
        assert await watermarks.wait([Token("remote", 11)]) == {Token("remote", 11): 10}
        await consume(0)
        assert await watermarks.position("remote") == 13
        async with kernel.pool.acquire() as conn:
            rows = await conn.fetch("SELECT kafka_partition, position FROM consumed_positions ORDER BY 1")
        assert [(r["kafka_partition"], r["position"]) for r in rows] == [(0, 13), (1, 12), (2, 11)]
    finally:
        await group.stop()
        await producer.stop()
