"""Kafka at arm's length: the only kernel module that imports aiokafka."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownProducerId,
    UnknownTopicOrPartitionError,
)

from shared.settings import KafkaSecurity, KernelSettings

# the broker cannot be reached (as opposed to refusing a request): the caller may try again shortly
BROKER_UNAVAILABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)

__all__ = [
    "BROKER_UNAVAILABLE",
    "ConsumerRecord",
    "KafkaError",
    "PartitionProgress",
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


# errors after which aiokafka's producer never sends again (its sender stops; Java's producer would start a new
# sequence): brokers restarted together answer OutOfOrderSequenceNumber to the idempotent producer's next batch
_PRODUCER_FATAL = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, ProducerClosed)


def producer_broken(producer: AIOKafkaProducer, error: BaseException | None = None) -> bool:
    """Whether `producer` is done for: `error` is one it does not recover from, or its sender has stopped (what it
    is given then waits for ever)."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return isinstance(error, _PRODUCER_FATAL) or (task is not None and task.done())


def make_consumer(settings: KernelSettings, group_id: str, topics: list[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=1000,
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


async def missing_records(
    settings: KernelSettings, offsets: Mapping[tuple[str, int], int], timeout: float = 2.0
) -> set[tuple[str, int]]:
    """The partitions (topic, partition) whose record at the given offset the broker no longer holds: deleted,
    truncated, or a broker that restarted empty. Reads with a client of its own, no group.

    First the partitions' first and next offsets (ListOffsets): a record between them is held. Only Describe on the
    topic is needed, which is all a service is granted on its own topics (Write and Describe, deploy/kafka/acls.txt:
    it never reads them). Only a record outside them is then fetched, to be sure, where the principal may Read:
    Tansu's ListOffsets answers too low after a multi-record batch, and it has no ACLs. Where the fetch is refused,
    the offsets stand."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="none",
        fetch_max_wait_ms=100,
        request_timeout_ms=int(timeout * 1000) + 1000,
        **settings.kafka_security(),
    )
    wanted = {TopicPartition(topic, partition): offset for (topic, partition), offset in offsets.items()}
    await consumer.start()
    try:
        doubtful = await _outside_the_log(consumer, wanted, timeout)
        found = await _fetched(consumer, {tp: wanted[tp] for tp in doubtful}, timeout) if doubtful else set()
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition) for tp in doubtful if tp not in found}


async def _outside_the_log(
    consumer: AIOKafkaConsumer, wanted: Mapping[TopicPartition, int], timeout: float
) -> set[TopicPartition]:
    """The partitions whose wanted offset is not between their first offset and their end (ListOffsets)."""
    partitions = list(wanted)
    try:
        first = await asyncio.wait_for(consumer.beginning_offsets(partitions), timeout)
        end = await asyncio.wait_for(consumer.end_offsets(partitions), timeout)
    except UnknownTopicOrPartitionError:
        return set(wanted)
    return {tp for tp, offset in wanted.items() if not first.get(tp, 0) <= offset < end.get(tp, 0)}


async def _fetched(
    consumer: AIOKafkaConsumer, wanted: Mapping[TopicPartition, int], timeout: float
) -> set[TopicPartition]:
    """The partitions whose record at the wanted offset a fetch returns within `timeout` (none where refused)."""
    found: set[TopicPartition] = set()
    consumer.assign(list(wanted))
    for tp, offset in wanted.items():
        consumer.seek(tp, offset)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found) < len(wanted) and (left := deadline - loop.time()) > 0:
        try:
            batches = await consumer.getmany(timeout_ms=int(left * 1000), max_records=len(wanted))
        except (OffsetOutOfRangeError, UnknownTopicOrPartitionError, TopicAuthorizationFailedError):
            break
        for tp, messages in batches.items():
            if any(m.offset == wanted[tp] for m in messages):
                found.add(tp)
                consumer.pause(tp)
    return found


Partition = tuple[str, int]  # (topic, partition)


class PartitionProgress:
    """How far one consumer group has got on some partitions, against their ends, asked of the broker each time.

    Read-only questions (metadata, ListOffsets, OffsetFetch) from clients of its own: it never joins the group, so
    it never moves a partition. Clients connect on first use, so a service starts while the broker is away."""

    PARTITIONS_TTL = 60.0  # seconds a topic's partition count is trusted

    def __init__(self, settings: KernelSettings, group_id: str, *, timeout: float = 2.0) -> None:
        self.group_id = group_id
        self.timeout = timeout
        common = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "client_id": f"{group_id}-progress",
            "request_timeout_ms": int(timeout * 1000),
            **settings.kafka_security(),
        }
        self._common = common
        self._clients: tuple[AIOKafkaConsumer, AIOKafkaAdminClient] | None = None
        self._starting = asyncio.Lock()
        self._partitions: dict[str, tuple[float, list[int]]] = {}

    async def _connected(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        async with self._starting:
            if self._clients is None:
                consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._common)
                admin = AIOKafkaAdminClient(**self._common)
                try:
                    await asyncio.wait_for(consumer.start(), self.timeout)
                    await asyncio.wait_for(admin.start(), self.timeout)
                except BaseException:
                    await _close(consumer, admin)
                    raise
                self._clients = consumer, admin
            return self._clients

    async def partitions(self, topics: Sequence[str]) -> list[Partition]:
        """Every partition of `topics` (a topic the broker does not know has none)."""
        _, admin = await self._connected()
        now = time.monotonic()
        stale = [t for t in topics if t not in self._partitions or now - self._partitions[t][0] > self.PARTITIONS_TTL]
        if stale:
            for described in await asyncio.wait_for(admin.describe_topics(stale), self.timeout):
                numbers = sorted(p["partition"] for p in described.get("partitions", ()))
                if described.get("error_code", 0) == 0:
                    self._partitions[described["topic"]] = (now, numbers)
        return [(t, p) for t in topics for p in self._partitions.get(t, (now, []))[1]]

    async def caught_up(self, partitions: Sequence[Partition]) -> set[Partition]:
        """The partitions on which the group has committed everything the broker holds right now."""
        if not partitions:
            return set()
        consumer, admin = await self._connected()
        tps = [TopicPartition(t, p) for t, p in partitions]
        ends = await asyncio.wait_for(consumer.end_offsets(tps), self.timeout)
        committed = await asyncio.wait_for(
            admin.list_consumer_group_offsets(self.group_id, partitions=tps), self.timeout
        )
        done = set()
        for tp in tps:
            offset = committed[tp].offset if tp in committed else -1
            if max(offset, 0) >= ends[tp]:
                done.add((tp.topic, tp.partition))
        return done

    async def close(self) -> None:
        if self._clients is not None:
            await _close(*self._clients)
            self._clients = None


async def _close(consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
    with contextlib.suppress(Exception):
        await admin.close()
