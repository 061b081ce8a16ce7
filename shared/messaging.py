"""Kafka at arm's length: the only kernel module that imports aiokafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from shared.settings import KafkaSecurity, KernelSettings

# the broker cannot be reached (as opposed to refusing a request): the caller may try again shortly
BROKER_UNAVAILABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)

__all__ = [
    "BROKER_UNAVAILABLE",
    "ConsumerRecord",
    "KafkaError",
    "TopicPartition",
    "broker_problem",
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


async def broker_problem(producer: AIOKafkaProducer, topics: Iterable[str], timeout: float = 2) -> str | None:
    """None when the (started) producer's broker answers and holds every one of `topics`, else what is wrong:
    a memory-only broker that restarted answers, but without the topics it held."""
    try:
        cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
    except (KafkaError, TimeoutError, OSError) as exc:
        return f"broker unreachable ({type(exc).__name__})"
    missing = sorted(set(topics) - set(cluster.topics()))
    return f"broker has no topic {', '.join(missing)}" if missing else None


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
