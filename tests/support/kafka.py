"""Test-side Kafka helpers: read a whole topic, produce raw messages.

They sign in as the session's broker asks (`sign_in`: admin's SASL/SCRAM on the Apache Kafka cluster, nothing on
Tansu), so a test names only the bootstrap address."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

_SIGN_IN: dict[str, dict[str, Any]] = {}  # bootstrap -> aiokafka's options (bootstrap_servers included)


def sign_in(bootstrap: str, options: dict[str, Any]) -> None:
    """The clients of these helpers for `bootstrap` sign in with `options` (KafkaCluster.client_options)."""
    _SIGN_IN[bootstrap] = options


def options(bootstrap: str) -> dict[str, Any]:
    """aiokafka's keyword arguments to reach `bootstrap`, signed in as the session says."""
    return {"bootstrap_servers": bootstrap, **_SIGN_IN.get(bootstrap, {})}


def librdkafka(bootstrap: str) -> dict[str, str]:
    """The same for confluent-kafka (librdkafka)."""
    signed = _SIGN_IN.get(bootstrap)
    config = {"bootstrap.servers": bootstrap}
    if signed:
        config |= {
            "security.protocol": signed["security_protocol"],
            "sasl.mechanisms": signed["sasl_mechanism"],
            "sasl.username": signed["sasl_plain_username"],
            "sasl.password": signed["sasl_plain_password"],
        }
    return config


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 20) -> list[ConsumerRecord]:
    """Every message of `topic` from the beginning, waiting until at least `expect` arrived."""
    consumer = AIOKafkaConsumer(
        topic, **options(bootstrap), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
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
    producer = AIOKafkaProducer(**options(bootstrap), acks="all")
    await producer.start()
    try:
        for key, headers, value in messages:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
