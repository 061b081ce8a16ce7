"""A real Apache Kafka cluster (devstack/kafka.py): three KRaft nodes, SASL/SCRAM, the ACLs and topics of deploy/kafka.

One cluster for the module. It proves the devstack's cluster is what the Compose stack promises: the topics of
topics.txt with three replicas and min.insync.replicas=2, clients signed in with SCRAM-SHA-512 (idempotent acks=all
producers, consumers with Kafka's minimum session of 6 s or more), a principal refused what acls.txt does not grant
it, and one node killed with SIGKILL leaving every topic writable and readable, then coming back in sync.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from devstack import kafka, procs
from devstack.kafka import KafkaCluster

pytestmark = pytest.mark.skipif(
    kafka.java() is None, reason="Apache Kafka needs Java 17 or later: no `java` on PATH nor in JAVA_HOME"
)

MEMBERSHIP = "union.membership.v1"
RESTRICTED = "union.membership.restricted.v1"
SESSION_MS = 10_000  # Kafka refuses sessions under group.min.session.timeout.ms (6 s)


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    try:
        kafka.kafka_libs()
    except RuntimeError:
        if shutil.which("mvn") is None:
            pytest.skip("Apache Kafka's jars are not fetched (`make kafka`) and there is no Maven to fetch them")
        subprocess.run(["make", "-s", "kafka"], cwd=procs.ROOT_DIR, check=True)
    root = procs.run_dir() / "test" / f"kafka-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    started = time.monotonic()
    cluster = KafkaCluster(root, nodes=3).start()
    print(f"3-node Kafka cluster up in {time.monotonic() - started:.1f} s")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def producer(cluster: KafkaCluster, principal: str) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(
        **cluster.client_options(principal), acks="all", enable_idempotence=True, request_timeout_ms=30_000
    )
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def consumer(cluster: KafkaCluster, principal: str, group: str, *topics: str) -> AsyncIterator[AIOKafkaConsumer]:
    client = AIOKafkaConsumer(
        *topics,
        **cluster.client_options(principal),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=1_000,
    )
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


async def read_until(client: AIOKafkaConsumer, marker: bytes, count: int, timeout: float = 60) -> list[Any]:
    """The records whose value starts with `marker`, once `count` of them have come."""
    found: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            batches = await client.getmany(timeout_ms=500)
            found += [r for records in batches.values() for r in records if r.value.startswith(marker)]
    return found


def test_topics_of_topics_txt_have_three_replicas_and_two_in_sync_required(cluster: KafkaCluster) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # noqa: PLC0415

    admin = AdminClient(cluster.librdkafka_config())
    metadata = admin.list_topics(timeout=10)
    assert set(metadata.brokers) == {1, 2, 3}
    specs = kafka.read_topics()
    assert {spec.name for spec in specs} <= set(metadata.topics), "every topic of topics.txt is made"
    for spec in specs:
        partitions = metadata.topics[spec.name].partitions
        assert len(partitions) == cluster.partitions
        for partition in partitions.values():
            assert len(partition.replicas) == 3, spec.name
            assert sorted(partition.isrs) == sorted(partition.replicas), spec.name
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs]
    for resource, future in admin.describe_configs(resources).items():
        configs = {name: entry.value for name, entry in future.result(10).items()}
        assert configs["min.insync.replicas"] == "2", resource
        for key, value in next(s for s in specs if s.name == resource.name).configs.items():
            assert configs[key] == value, (resource, key)  # e.g. the restricted topic is compacted
    assert configs is not None


async def test_signed_in_with_scram_an_idempotent_producer_and_a_consumer_round_trip(cluster: KafkaCluster) -> None:
    marker = uuid.uuid4().hex.encode()
    async with producer(cluster, "membership") as out:
        for i in range(20):
            await out.send_and_wait(MEMBERSHIP, marker + b"-%d" % i, key=b"member-%d" % (i % 5))
    # servicecard reads membership's topic in its own group, both granted by acls.txt
    async with consumer(cluster, "servicecard", "servicecard", MEMBERSHIP) as source:
        records = await read_until(source, marker, 20)
    assert sorted(r.value for r in records) == sorted(marker + b"-%d" % i for i in range(20))
    by_key: dict[bytes, list[bytes]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record.value)
    for key, values in by_key.items():  # one key, one partition: in the order written
        numbers = [int(v.rsplit(b"-", 1)[1]) for v in values]
        assert numbers == sorted(numbers), key


async def test_a_principal_is_refused_what_acls_txt_does_not_grant_it(cluster: KafkaCluster) -> None:
    grants = kafka.read_grants()
    assert not [g for g in grants if g.principal == "servicecard" and g.name == MEMBERSHIP and g.operation == "Write"]
    async with producer(cluster, "servicecard") as out:
        with pytest.raises(TopicAuthorizationFailedError):
            await out.send_and_wait(MEMBERSHIP, b"forged")
    # the restricted topic is read by transfer alone
    assert not [g for g in grants if g.principal == "regional" and g.name == RESTRICTED]
    with pytest.raises(TopicAuthorizationFailedError):
        async with consumer(cluster, "regional", f"regional-{uuid.uuid4().hex[:8]}", RESTRICTED) as reader:
            await reader.getmany(timeout_ms=5_000)
    # a group that is not its own
    with pytest.raises(GroupAuthorizationFailedError):
        async with consumer(cluster, "servicecard", "membership", MEMBERSHIP) as reader:
            await reader.getmany(timeout_ms=5_000)


async def test_a_wrong_password_is_refused(cluster: KafkaCluster) -> None:
    options = {**cluster.client_options("membership"), "sasl_plain_password": "not-the-password"}
    client = AIOKafkaProducer(**options, request_timeout_ms=5_000)
    with pytest.raises(KafkaConnectionError):
        await client.start()
    await client.stop()


async def test_one_node_killed_leaves_every_topic_writable_and_readable_and_it_rejoins(cluster: KafkaCluster) -> None:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    metadata = AdminClient(cluster.librdkafka_config()).list_topics(MEMBERSHIP, timeout=10)
    victim = metadata.topics[MEMBERSHIP].partitions[0].leader  # it leads at least this partition
    pid = cluster.kill(victim)
    assert not cluster.node(victim).alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    marker = uuid.uuid4().hex.encode()
    started = time.monotonic()
    async with producer(cluster, "membership") as out:  # acks=all: two of three in sync are enough
        for i in range(30):
            await out.send_and_wait(MEMBERSHIP, marker + b"-%d" % i, key=b"member-%d" % i)
    written = time.monotonic() - started
    async with consumer(cluster, "regional", f"regional-{uuid.uuid4().hex[:8]}", MEMBERSHIP) as reader:
        records = await read_until(reader, marker, 30)
    assert sorted(r.value for r in records) == sorted(marker + b"-%d" % i for i in range(30))
    assert victim not in cluster.live_brokers()
    print(f"30 writes with node {victim} dead took {written:.1f} s")

    node = cluster.start_node(victim)
    assert node.alive
    assert node.pid != pid
    assert victim in cluster.live_brokers()
    cluster.wait_in_sync(cluster.topic_names(), timeout=60)  # it caught up: every replica in sync again
