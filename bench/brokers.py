"""The brokers the bench measures on, and each measurement's own corner of one of them and of the database.

Tansu (memory only) runs for the whole bench; its clients set CLIENT_ENV (no idempotent producer, a short group
session). The three-node Apache Kafka cluster (devstack/kafka.py: SASL/SCRAM, the ACLs of deploy/kafka/) is started
under the bench's folder the first time a part asks for it; each service signs in there as its own principal with
Kafka's defaults (idempotence on, a 10 s session), never with CLIENT_ENV."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import kafka, procs
from devstack.broker import CLIENT_ENV, TansuBroker
from devstack.kafka import Grant, KafkaCluster
from devstack.platform import Platform, all_topic_names
from services.membership.service import MembershipSettings
from shared.messaging import create_topics

KAFKA_NODES = 3
REPLICAS = 2  # processes of a service measured against one, on Kafka


@dataclass(frozen=True)
class Broker:
    """One broker as its clients see it: its name in the table, where it listens, how a principal signs in."""

    name: str  # "Tansu", "Apache Kafka, 3 nodes"
    server: TansuBroker | KafkaCluster

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap

    @property
    def cluster(self) -> KafkaCluster | None:
        return self.server if isinstance(self.server, KafkaCluster) else None

    def pids(self) -> list[int]:
        """The broker's running processes: Tansu's, or each Kafka node's."""
        if isinstance(self.server, KafkaCluster):
            return [pid for node in self.server.members if (pid := node.pid) is not None]
        process = self.server.process
        return [process.pid] if process is not None and process.poll() is None else []

    def env(self, principal: str) -> dict[str, str]:
        """A client's Kafka variables, signed in as `principal` (on Kafka a service signs in as itself: its name)."""
        if self.cluster is None:
            return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **CLIENT_ENV}
        env = self.cluster.service_env(principal)
        # the bench's own environment holds CLIENT_ENV for the Tansu parts, and a service process inherits it: the
        # cluster's variables must replace every one of them
        if missing := CLIENT_ENV.keys() - env.keys():
            raise RuntimeError(f"the Kafka services would inherit Tansu's {sorted(missing)}")
        return env

    def settings(self, principal: str) -> dict[str, Any]:
        """The same as KernelSettings' keyword arguments, for a client in the bench's own process."""
        return {name.lower(): value for name, value in self.env(principal).items()}

    def named(self, what: str) -> str:
        """A row's "what", the broker it was measured on named."""
        return f"{what} ({self.name})"

    async def provision(self, prefix: str, groups: Iterable[tuple[str, str]] = ()) -> None:
        """The platform's topics under `prefix`. On Kafka those of deploy/kafka/topics.txt with the grants of
        acls.txt, and for each (principal, group) in `groups` a Read on that further consumer group (named without
        the prefix, as acls.txt names them); every node serves them before this returns."""
        if self.cluster is None:
            await create_topics(self.bootstrap, all_topic_names(prefix))
            return
        cluster = self.cluster
        grants = [Grant(principal, "Read", "group", group) for principal, group in groups]

        def provision() -> None:
            cluster.provision(prefix)
            cluster.grant(grants, prefix)

        await asyncio.to_thread(provision)


def kafka_name(nodes: int) -> str:
    """The cluster's name in a table."""
    return f"Apache Kafka, {nodes} node{'s' if nodes != 1 else ''}"


def start_kafka(root: Path, nodes: int) -> KafkaCluster:
    """An Apache Kafka cluster of `nodes` nodes under `root`, its jars fetched first if they are not yet (Maven, as
    the test suite does). `make bench` runs three; `make scale` one, as `make run` does by default."""
    try:
        kafka.kafka_libs()
    except RuntimeError:  # not fetched yet
        subprocess.run(["make", "-s", "kafka"], cwd=procs.ROOT_DIR, check=True)
    # start() stops every node it started when it fails
    return KafkaCluster(root, nodes=nodes).start()


class Brokers:
    """Tansu, started with the bench, and the Kafka cluster, started under `root` the first time a part asks for it
    (`kafka()`) and stopped by `stop_kafka()` (the bench stops it after the last part that uses it)."""

    KAFKA = kafka_name(KAFKA_NODES)  # its name in the table

    def __init__(self, tansu: TansuBroker, root: Path) -> None:
        self.tansu = Broker("Tansu", tansu)
        self._root = root
        self._cluster: KafkaCluster | None = None

    async def kafka(self) -> Broker:
        if self._cluster is None:
            self._cluster = await asyncio.to_thread(self._start_kafka)
        return Broker(self.KAFKA, self._cluster)

    def _start_kafka(self) -> KafkaCluster:
        return start_kafka(self._root / "kafka", KAFKA_NODES)

    def stop_kafka(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None


def secret_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Scope:
    """One measurement's corner of a broker and of the database: topics and consumer groups under `<tag>.`,
    database schemas `<tag>_<service>`, the services' keys its own. Two scopes never share a topic, group or table.
    """

    broker: Broker
    tag: str
    key: str = field(default_factory=secret_key)

    @property
    def prefix(self) -> str:
        return f"{self.tag}."

    @property
    def schemas(self) -> str:
        return f"{self.tag}_"

    def folder(self, work: Path) -> Path:
        """The scope's files (the services' logs, rosters) under the bench's folder."""
        path = work / self.tag
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def provision(self, groups: Iterable[tuple[str, str]] = ()) -> None:
        """The platform's topics under the scope's prefix, and on Kafka their grants (Broker.provision)."""
        await self.broker.provision(self.prefix, groups)

    def platform(
        self,
        dsn: str,
        work: Path,
        services: Iterable[str],
        *,
        replicas: int = 1,
        schemas: str | None = None,
        **env: str,
    ) -> Platform:
        """The services (`replicas` processes of each) as processes, each signed in as itself, not started yet;
        `schemas` another schema prefix than the scope's, `env` further variables."""
        ports = {name: procs.free_port() for name in services}
        base_env = {
            "TOPIC_PREFIX": self.prefix,
            "DB_SCHEMA_PREFIX": self.schemas if schemas is None else schemas,
            "PII_MASTER_KEY": self.key,
            "BLIND_INDEX_KEY": self.key,
            "BALLOT_MASTER_KEY": self.key,
            "LOG_LEVEL": "WARNING",
            **env,
        }
        return Platform(
            base_env,
            dict.fromkeys(ports, dsn),
            self.folder(work),
            ports,
            replicas=replicas,
            service_env=self.broker.env,
        )

    def membership_settings(self, dsn: str) -> MembershipSettings:
        """Membership's settings for its code run in the bench's process (an organisation made, a roster imported)."""
        return MembershipSettings(
            database_url=dsn,
            db_schema=f"{self.schemas}membership",
            topic_prefix=self.prefix,
            pii_master_key=self.key,
            blind_index_key=self.key,
            **self.broker.settings("membership"),
        )
