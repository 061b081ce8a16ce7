"""Test-side Kafka helpers: read a whole topic, produce raw messages."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 20) -> list[ConsumerRecord]:
    """Every message of `topic` from the beginning, waiting until at least `expect` arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expect and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
        # anything that arrives shortly after (duplicates would show here)
        for messages in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(messages)
    finally:
        await consumer.stop()
    return records


async def produce(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, list[tuple[str, bytes]], bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, headers, value in messages:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
