"""Kafka at arm's length: the only kernel module that imports aiokafka."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.settings import KafkaSecurity, KernelSettings

__all__ = [
    "ConsumerRecord",
    "KafkaError",
    "TopicPartition",
    "create_topics",
    "make_consumer",
    "make_producer",
]


def make_producer(settings: KernelSettings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
        **settings.kafka_security(),
    )


def make_consumer(settings: KernelSettings, group_id: str, topics: list[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=200,
        fetch_max_wait_ms=20,  # latency over fetch count: an idle partition answers within 20 ms
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        **settings.kafka_security(),
    )


async def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 3,
    replication: int = 1,
    *,
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; returns those it created (`security`: settings.kafka_security())."""
    options: Mapping[str, object] = security or {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in names if n not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another starter won the race
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in wanted]
                )
        return wanted
    finally:
        await admin.close()
