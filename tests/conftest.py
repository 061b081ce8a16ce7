"""One PostgreSQL and one broker per test session; each test gets its own schema and topics.

The broker is Tansu (memory only) unless TEST_BROKER=kafka: then an Apache Kafka cluster of TEST_KAFKA_NODES nodes
(3 by default: replication factor 3, `min.insync.replicas=2`), SASL/SCRAM and the ACLs of deploy/kafka/
(devstack/kafka.py). On it the tests isolate by topic prefix as on Tansu: `stack.provision(prefix)` makes the topics
of deploy/kafka/topics.txt under the prefix, with their configs, and grants each principal its prefixed ACLs, so
the services the end-to-end tests start as processes sign in as themselves and are held to acls.txt. Clients that a
test drives in its own process (the kernel, a service in process, the test's own readers and writers) sign in as
`admin`, the super user: they read and write fixture topics no principal is granted (`union.kerneltest.v1`), and a
grant to each test prefix would cost every such test a round of ACLs and their propagation to every node.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack import kafka, procs
from devstack.broker import CLIENT_ENV, TansuBroker
from devstack.kafka import ADMIN, KafkaCluster, TopicSpec
from devstack.platform import all_topic_names
from devstack.postgres import EmbeddedPostgres
from shared.messaging import create_topics
from tests.support import auth
from tests.support import kafka as kafka_support

TEST_BROKER = os.environ.get("TEST_BROKER", "tansu").strip().lower()


class KafkaBroker:
    """A KafkaCluster with TansuBroker's stop() and start(): the whole cluster stops and starts again, its data kept."""

    def __init__(self, cluster: KafkaCluster) -> None:
        self.cluster = cluster

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def start(self) -> KafkaBroker:
        self.cluster.restart()
        return self

    def stop(self) -> None:
        self.cluster.stop()


@dataclass
class Stack:
    postgres: EmbeddedPostgres
    broker: TansuBroker | KafkaBroker

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def cluster(self) -> KafkaCluster | None:
        """The Apache Kafka cluster (TEST_BROKER=kafka), else None."""
        return self.broker.cluster if isinstance(self.broker, KafkaBroker) else None

    @property
    def durable(self) -> bool:
        """Whether the broker keeps what it acknowledged across a restart (Kafka does, Tansu forgets everything)."""
        return self.cluster is not None

    def settings(self, principal: str = ADMIN) -> dict[str, Any]:
        """A service's settings (KernelSettings' fields) to reach this broker, signed in as `principal`."""
        return {k.lower(): v for k, v in self.env(principal).items()}

    def env(self, principal: str = ADMIN) -> dict[str, str]:
        """The same as environment variables, for a process."""
        if self.cluster is None:
            return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **CLIENT_ENV}
        return self.cluster.service_env(principal)

    def service_env(self, service: str) -> dict[str, str]:
        """A service process's variables: signed in as itself (Platform's `service_env`)."""
        return self.env(service if self.cluster is not None else ADMIN)

    async def create_topics(self, names: list[str], partitions: int = 3) -> None:
        """Topics that are not in topics.txt (the kernel's fixtures): Kafka's replication, no grants (admin's)."""
        if self.cluster is None:
            await create_topics(self.bootstrap, names, partitions=partitions)
            return
        cluster = self.cluster
        specs = [TopicSpec(name) for name in names]

        def made() -> None:
            cluster.create_topics(specs)
            cluster.wait_seen_everywhere(names, [], "")

        await asyncio.to_thread(made)

    def provision(self, prefix: str) -> list[str]:
        """The platform's topics under `prefix`: on Kafka those of topics.txt with their configs and the grants of
        acls.txt, every node serving them before it returns. Returns their names."""
        if self.cluster is None:
            names = all_topic_names(prefix)
            asyncio.run(create_topics(self.bootstrap, names, partitions=3))
            return names
        self.cluster.provision(prefix=prefix)
        return self.cluster.topic_names(prefix)

    async def provision_async(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self.provision, prefix)


@pytest.fixture(scope="session", autouse=True)
def token_issuer() -> Iterator[None]:
    """Every service in this session, in process or not, verifies tokens with this issuer's public key."""
    path = auth.issuer().jwks_path
    os.environ["AUTH_JWKS"] = str(path)
    yield
    shutil.rmtree(path.parent, ignore_errors=True)


def _kafka_cluster(root: Any) -> KafkaCluster:
    if kafka.java() is None:
        pytest.fail("TEST_BROKER=kafka: Apache Kafka needs Java 17 or later, and there is no `java`")
    try:
        kafka.kafka_libs()
    except RuntimeError:
        subprocess.run(["make", "-s", "kafka"], cwd=procs.ROOT_DIR, check=True)
    nodes = int(os.environ.get("TEST_KAFKA_NODES", "3"))
    return KafkaCluster(root / "kafka", nodes=nodes).start()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if TEST_BROKER not in {"tansu", "kafka"}:
        raise pytest.UsageError(f"TEST_BROKER must be tansu or kafka, not {TEST_BROKER!r}")
    external_db = os.environ.get("TEST_DATABASE_URL")
    root = procs.run_dir() / "test" / str(os.getpid())
    root.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(root / "pg", procs.free_port())
    if not external_db:
        postgres.start(durable=False)
    broker: TansuBroker | KafkaBroker
    saved = {name: os.environ.get(name) for name in CLIENT_ENV}
    try:
        if TEST_BROKER == "kafka":
            broker = KafkaBroker(_kafka_cluster(root))
            kafka_support.sign_in(broker.bootstrap, broker.cluster.client_options(ADMIN))
        else:
            broker = TansuBroker(procs.free_port(), root).start()
            # what the settings read unless a test says otherwise: Tansu has no idempotent producer, and completes a
            # join after half the session (Kafka's defaults: idempotence, 10 s)
            os.environ.update(CLIENT_ENV)
    except BaseException:
        postgres.stop()
        raise
    try:
        yield Stack(postgres, broker)
    finally:
        broker.stop()
        postgres.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def unique() -> str:
    """A short id for this test's schema, topics and consumer groups."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_prefix(stack: Stack, unique: str) -> str:
    return f"t{unique}."
