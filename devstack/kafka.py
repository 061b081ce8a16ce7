"""Apache Kafka (KRaft) for the devstack: a cluster of 1 or 3 nodes, each broker and controller at once.

The jars come from Maven Central, fetched by `make kafka` (devstack/kafka/pom.xml) into `.run/kafka/<version>/libs`;
each node is `java -cp <libs>/* kafka.Kafka <server.properties>`, with its data under the folder it is given, kept
across restarts (the storage is formatted only when it is not yet).

Security is the one of deploy/compose.yaml (docs/kafka-security.md): clients sign in with SASL/SCRAM-SHA-512, the
StandardAuthorizer denies what is not granted (`allow.everyone.if.no.acl.found=false`), `admin` is the super user,
and the controller listener takes SASL/PLAIN with one static user, `admin`. Every principal's SCRAM credential is
written into the metadata log when the storage is formatted (`--add-scram`); its password is made here, once per
cluster folder (`credentials.env`, readable by its owner only). The topics and the grants are read from the very
files the Compose stack applies, deploy/kafka/topics.txt and deploy/kafka/acls.txt: one source for both.

Replication follows the size: replication factor min(3, nodes), and with three nodes `min.insync.replicas=2`, so
acks=all writes go on while any one node is down.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import procs

HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
DEPLOY = procs.ROOT_DIR / "deploy" / "kafka"
ACLS_FILE = DEPLOY / "acls.txt"
TOPICS_FILE = DEPLOY / "topics.txt"

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
# the ports of a node: the clients' (and the brokers' own) listener, and KRaft's
CLIENT, CONTROLLER = "CLIENT", "CONTROLLER"

# JVM options (with the heap, -Xmx): the serial collector and the client compiler only (C1): a development
# cluster's load is small, and two cores are shared with PostgreSQL and the services; both start faster and use
# fewer threads than G1 and C2
JVM_OPTIONS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
]


def kafka_version() -> str:
    """The version devstack/kafka/pom.xml names (`kafka.version`): what `make kafka` fetches."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise RuntimeError(f"{POM} names no kafka.version")
    return found.group(1).strip()


def kafka_home() -> Path:
    """`.run/kafka/<version>` (under RUN_DIR, as `make kafka` puts it): its `libs/` holds the jars."""
    return procs.run_dir() / "kafka" / kafka_version()


def kafka_libs() -> Path:
    libs = kafka_home() / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"Apache Kafka's jars are not in {libs}: run `make kafka` (Maven fetches them)")
    return libs


def java() -> str | None:
    """The `java` to run: JAVA_HOME's, else the one on PATH; None when there is none."""
    if home := os.environ.get("JAVA_HOME"):
        candidate = Path(home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    return shutil.which("java")


def class_archive(binary: str) -> Path:
    """The class data sharing archive of Kafka's classes for this `java` (Java 13+'s dynamic AppCDS).

    Loading Kafka's ten thousand classes is most of a node's start; mapped from an archive it is about 40% faster
    (1 node: 2.8 s to 1.6 s). The archive is made by the first node that stops cleanly without one
    (-XX:ArchiveClassesAtExit) and used by every later start; it belongs to one JVM and one set of jars, so it sits
    beside the jars and names the JVM. A JVM that finds it unusable runs without it (-Xshare:auto)."""
    jvm = hashlib.sha256(os.path.realpath(binary).encode()).hexdigest()[:10]
    return kafka_home() / f"classes-{jvm}.jsa"


# ---------------------------------------------------------------------------------------------------------------
# deploy/kafka/acls.txt and topics.txt, read as apply-acls.sh and create-topics.sh read them


@dataclass(frozen=True)
class Grant:
    """One line of acls.txt: `PRINCIPAL OPERATION RESOURCE NAME [PATTERN]`."""

    principal: str
    operation: str  # Read, Write, Describe, ...
    resource: str  # topic | group
    name: str  # without the prefix
    pattern: str = "literal"  # literal | prefixed


_OPERATIONS = {"Read", "Write", "Describe", "Create", "Delete", "Alter", "DescribeConfigs", "AlterConfigs"}


def read_grants(path: Path = ACLS_FILE) -> list[Grant]:
    grants = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(words) not in {4, 5}:
            raise ValueError(f"{where}: expected PRINCIPAL OPERATION RESOURCE NAME [PATTERN]: {line}")
        grant = Grant(*words)
        if not re.fullmatch(r"[a-z0-9_]+", grant.principal):
            raise ValueError(f"{where}: principal must be [a-z0-9_]: {grant.principal}")
        if grant.operation not in _OPERATIONS:
            raise ValueError(f"{where}: unknown operation {grant.operation}")
        if grant.resource not in {"topic", "group"}:
            raise ValueError(f"{where}: resource must be topic or group: {grant.resource}")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", grant.name):
            raise ValueError(f"{where}: bad name {grant.name}")
        if grant.pattern not in {"literal", "prefixed"}:
            raise ValueError(f"{where}: pattern must be literal or prefixed: {grant.pattern}")
        grants.append(grant)
    return grants


@dataclass(frozen=True)
class TopicSpec:
    """One line of topics.txt: the name, then the topic's configs `key=value`."""

    name: str
    configs: dict[str, str] = field(default_factory=dict)


def read_topics(path: Path = TOPICS_FILE) -> list[TopicSpec]:
    topics = []
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        configs = {}
        for word in words[1:]:
            key, equals, value = word.partition("=")
            if not (key and equals and value):
                raise ValueError(f"{path}: {words[0]}: config {word} is not key=value")
            configs[key] = value
        topics.append(TopicSpec(words[0], configs))
    return topics


def principals(grants: Iterable[Grant]) -> list[str]:
    """Every principal that signs in: admin and each one the grants name."""
    return sorted({ADMIN, *(g.principal for g in grants)})


# ---------------------------------------------------------------------------------------------------------------
# the nodes


@dataclass
class KafkaNode:
    """One process, broker and controller at once; its folder holds its configuration, data and log."""

    node_id: int
    port: int  # CLIENT: SASL/SCRAM, for the clients and the brokers' own traffic
    controller_port: int  # CONTROLLER: KRaft's, SASL/PLAIN with the one static user admin
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def config_path(self) -> Path:
        return self.folder / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None

    @property
    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's Uuid.toString), and, as
    Kafka's Uuid.randomUuid makes them, never starting with `-` (the storage tool would take it for an option)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _jaas_scram(user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


@dataclass
class KafkaCluster:
    """N nodes (1 or 3) of Apache Kafka on 127.0.0.1, data under `root` (kept across restarts).

    `start()` formats what is not formatted, starts every node, waits until each serves, then makes the topics of
    topics.txt and grants the ACLs of acls.txt (both idempotent). `kill(node_id)` and `start_node(node_id)` are for
    fault tests; `restart()` starts again whatever died.
    """

    root: Path
    nodes: int = 1
    ports: list[int] | None = None  # the clients' port of each node; free ones by default
    heap: str = "384m"
    topic_prefix: str = ""  # put before every topic and group name of the files, as TOPIC_PREFIX in Compose
    partitions: int = 3
    members: list[KafkaNode] = field(init=False)

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("a cluster has at least one node")
        ports = self.ports or [procs.free_port() for _ in range(self.nodes)]
        if len(ports) != self.nodes:
            raise ValueError(f"{self.nodes} nodes need {self.nodes} ports, not {len(ports)}")
        self.members = [
            KafkaNode(i + 1, port, procs.free_port(), self.root / f"node-{i + 1}") for i, port in enumerate(ports)
        ]

    # -- what clients need -------------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.members)

    @property
    def replication_factor(self) -> int:
        return min(3, self.nodes)

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.nodes >= 3 else 1

    @property
    def credentials(self) -> dict[str, str]:
        """Each principal's password (admin's included), made once for this cluster's folder."""
        return self._credentials()

    def password(self, principal: str = ADMIN) -> str:
        return self.credentials[principal]

    def client_options(self, principal: str = ADMIN) -> dict[str, Any]:
        """aiokafka's keyword arguments to sign in as `principal` (bootstrap_servers included)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.password(principal),
        }

    def librdkafka_config(self, principal: str = ADMIN) -> dict[str, str]:
        """confluent-kafka's (librdkafka's) configuration to sign in as `principal`."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": MECHANISM,
            "sasl.username": principal,
            "sasl.password": self.password(principal),
        }

    def service_env(self, principal: str) -> dict[str, str]:
        """The environment a service reads its Kafka settings from (shared/settings.py), signed in as `principal`."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD": self.password(principal),
            "KAFKA_IDEMPOTENCE": "true",
            # Kafka refuses sessions under its group.min.session.timeout.ms (6 s)
            "KAFKA_SESSION_TIMEOUT_MS": "10000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        }

    def node(self, node_id: int) -> KafkaNode:
        for node in self.members:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id}: the nodes are 1..{self.nodes}")

    # -- the folder: cluster id and credentials, kept with the data ----------------------------------------------

    def _cluster_id(self) -> str:
        path = self.root / "cluster.id"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(_cluster_id() + "\n")
        return path.read_text().strip()

    def _check_size(self) -> None:
        """A folder holds a cluster of one size: its quorum's voters are fixed when the storage is formatted."""
        path = self.root / "nodes"
        if path.exists():
            formatted = int(path.read_text())
            if formatted != self.nodes:
                raise RuntimeError(
                    f"{self.root} holds a {formatted}-node Kafka cluster, not {self.nodes}: delete it to start anew"
                )
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{self.nodes}\n")

    def _credentials(self) -> dict[str, str]:
        """credentials.env: `principal=password` a line, 0600. A principal new in acls.txt gets a password here."""
        path = self.root / "credentials.env"
        known = dict(line.split("=", 1) for line in path.read_text().split()) if path.exists() else {}
        missing = [p for p in principals(read_grants()) if p not in known]
        if missing:
            self.root.mkdir(parents=True, exist_ok=True)
            with path.open("a") as out:
                path.chmod(0o600)
                for principal in missing:
                    known[principal] = secrets.token_hex(24)  # no , ] " \ or spaces: JAAS and SCRAM strings
                    out.write(f"{principal}={known[principal]}\n")
        return known

    # -- configuration ---------------------------------------------------------------------------------------------

    def _properties(self, node: KafkaNode) -> dict[str, str]:
        admin = self.password(ADMIN)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.members)
        replicas = str(self.replication_factor)
        min_isr = str(self.min_insync_replicas)
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{ADMIN}" password="{admin}" user_{ADMIN}="{admin}";'
        )
        return {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"{CLIENT}://127.0.0.1:{node.port},{CONTROLLER}://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"{CLIENT}://127.0.0.1:{node.port}",
            "listener.security.protocol.map": f"{CLIENT}:SASL_PLAINTEXT,{CONTROLLER}:SASL_PLAINTEXT",
            "controller.listener.names": CONTROLLER,
            "inter.broker.listener.name": CLIENT,
            # clients: SCRAM-SHA-512 only, credentials in the metadata log; the brokers sign in to each other as admin
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{CLIENT.lower()}.{MECHANISM.lower()}.sasl.jaas.config": _jaas_scram(ADMIN, admin),
            # KRaft's listener cannot use SCRAM (its credentials live in the log it serves): PLAIN, one static user
            "sasl.mechanism.controller.protocol": "PLAIN",
            f"listener.name.{CONTROLLER.lower()}.sasl.enabled.mechanisms": "PLAIN",
            f"listener.name.{CONTROLLER.lower()}.plain.sasl.jaas.config": plain,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN}",
            "log.dirs": str(node.data_dir),
            "auto.create.topics.enable": "false",
            "num.partitions": str(self.partitions),
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            # a node that stops heartbeating is fenced (its partitions led elsewhere, it leaves the ISRs) in 6 s
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            "replica.lag.time.max.ms": "10000",
            # a development cluster: small segments and indexes, no waiting at start or stop
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.index.size.max.bytes": str(1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "2",
        }

    def _write_config(self, node: KafkaNode) -> None:
        node.folder.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={value}\n" for key, value in self._properties(node).items())
        # it holds the admin's password
        fd = os.open(node.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

    def _java(self, main: str, *args: str, dump_classes: Path | None = None) -> list[str]:
        binary = java()
        if binary is None:
            raise RuntimeError("Apache Kafka needs Java 17 or later: no `java` on PATH nor in JAVA_HOME")
        archive = class_archive(binary)
        if archive.exists():
            sharing = [f"-XX:SharedArchiveFile={archive}"]
        elif dump_classes is not None:
            sharing = [f"-XX:ArchiveClassesAtExit={dump_classes}"]
        else:
            sharing = []
        return [
            binary,
            f"-Xmx{self.heap}",
            "-Xms64m",
            *JVM_OPTIONS,
            *sharing,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{kafka_libs()}/*",
            main,
            *args,
        ]

    def _format(self, nodes: list[KafkaNode]) -> None:
        """Format the storage of the nodes that are not formatted yet, with every principal's SCRAM credential."""
        cluster_id = self._cluster_id()
        scram = []
        for principal, password in sorted(self.credentials.items()):
            scram += ["--add-scram", f"{MECHANISM}=[name={principal},password={password}]"]
        running = []
        for node in nodes:
            self._write_config(node)
            argv = self._java(
                "kafka.tools.StorageTool", "format", "--cluster-id", cluster_id, "--config", str(node.config_path)
            )
            with node.log_path.open("ab") as log:
                running.append((node, subprocess.Popen([*argv, *scram], stdout=log, stderr=subprocess.STDOUT)))
        for node, process in running:
            if process.wait(120) != 0:
                raise RuntimeError(f"formatting node {node.node_id} failed ({process.returncode}); see {node.log_path}")

    # -- life ------------------------------------------------------------------------------------------------------

    def _spawn(self, node: KafkaNode) -> None:
        if node.alive:
            return
        if not node.formatted:
            self._format([node])
        self._write_config(node)
        # the first node to start where there is no class archive yet makes one when it stops (not when killed)
        dump = node.folder / "classes.jsa" if node is self.members[0] else None
        if dump is not None:
            dump.unlink(missing_ok=True)
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(node.config_path), dump_classes=dump),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _keep_class_archive(self, node: KafkaNode) -> None:
        """Move the class archive a stopped node wrote into place for every later start (see class_archive)."""
        dumped = node.folder / "classes.jsa"
        binary = java()
        if binary is None or not dumped.exists():
            return
        archive = class_archive(binary)
        if not archive.exists():
            with contextlib.suppress(OSError):
                dumped.replace(archive)
        dumped.unlink(missing_ok=True)

    def start(self, timeout: float = 120) -> KafkaCluster:
        """Format what is not formatted, start every node, wait until all serve, then the topics and the grants."""
        kafka_libs()  # fail early, with how to fetch them
        self._check_size()
        self._credentials()
        fresh = [node for node in self.members if not node.formatted]
        if fresh:
            self._format(fresh)
        for node in self.members:
            self._spawn(node)
        try:
            self.wait_ready(timeout)
            self.provision()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, timeout: float = 120) -> KafkaCluster:
        """Start again every node that died (same data, same ports) and wait until the cluster serves."""
        for node in self.members:
            if node.process is not None and node.process.poll() is not None:
                node.process.wait()
            self._spawn(node)
        self.wait_ready(timeout)
        self.provision()
        return self

    def kill(self, node_id: int) -> int:
        """SIGKILL one node, as a lost machine: no controlled shutdown. Returns the pid it had."""
        node = self.node(node_id)
        if node.process is None or node.process.poll() is not None:
            raise RuntimeError(f"node {node_id} is not running")
        pid = node.process.pid
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        return pid

    def start_node(self, node_id: int, timeout: float = 60, *, wait: bool = True) -> KafkaNode:
        """Start one node again (same data, same ports; a node whose data was lost is formatted again first).

        With `wait`, returns once the cluster counts it among its brokers; without, at once (`serves` tells when):
        a node restarted while the others are down cannot be counted before a quorum is back."""
        node = self.node(node_id)
        if node.process is not None and node.process.poll() is not None:
            node.process.wait()
        self._spawn(node)
        if wait:
            self.wait_ready(timeout)
        return node

    def serves(self, node_id: int, timeout: float = 1) -> bool:
        """Does this node answer, and name itself a broker (registered, not fenced)? Asked of the node alone: the
        others may still name a node that was just killed, until its broker session expires."""
        node = self.node(node_id)
        if not node.alive:
            return False
        try:
            return node_id in self.live_brokers(timeout, asking=node)
        except Exception:
            return False

    def stop(self) -> None:
        """SIGTERM to every node at once, then wait for each (SIGKILL after 15 s).

        Each shuts down in order, but the last ones cannot finish their controlled shutdown without a quorum: it
        takes a few seconds, and on the next start a broker whose registration was left open waits up to
        broker.session.timeout.ms before the controller takes it again. Stopping them one by one is no faster."""
        running = [node for node in self.members if node.process is not None and node.process.poll() is None]
        for node in running:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
        for node in running:
            assert node.process is not None
            procs.stop(node.process, timeout=15)
            self._keep_class_archive(node)
        for node in self.members:
            node.process = None

    # -- waiting ---------------------------------------------------------------------------------------------------

    def _admin(self, bootstrap: str | None = None) -> Any:
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - a dev dependency: only when a cluster runs

        config: dict[str, str | int | float | bool] = {**self.librdkafka_config(ADMIN), "socket.timeout.ms": 5000}
        if bootstrap is not None:  # one node asked alone: that it does not answer (yet) is the answer, not an error
            config |= {"bootstrap.servers": bootstrap, "log_level": 0}
        return AdminClient(config)

    def live_brokers(self, timeout: float = 5, *, asking: KafkaNode | None = None) -> set[int]:
        """The nodes the cluster's metadata names as brokers now (registered and not fenced), as any node or
        `asking` alone sees it."""
        metadata = self._admin(None if asking is None else asking.bootstrap).list_topics(timeout=timeout)
        return set(metadata.brokers)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until every running node listens and the cluster names each of them a broker."""
        deadline = time.monotonic() + timeout
        running = [node for node in self.members if node.process is not None]
        for node in running:
            procs.wait_for_port(node.port, max(1.0, deadline - time.monotonic()), node.process)
        wanted = {node.node_id for node in running}
        seen: set[int] = set()
        while time.monotonic() < deadline:
            for node in running:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(
                        f"node {node.node_id} exited with {node.process.returncode}; see {node.log_path}"
                    )
            with contextlib.suppress(Exception):
                seen = self.live_brokers(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
                if wanted <= seen:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"Kafka nodes {sorted(wanted - seen)} not serving after {timeout}s")

    def partition_leaders(self, timeout: float = 5) -> dict[int, int]:
        """How many partitions each node leads now, over every topic (the internal ones included)."""
        led = dict.fromkeys((node.node_id for node in self.members), 0)
        for topic in self._admin().list_topics(timeout=timeout).topics.values():
            for partition in topic.partitions.values():
                if partition.leader in led:
                    led[partition.leader] += 1
        return led

    def active_controller(self, timeout: float = 5) -> int:
        """The node that leads the KRaft quorum now (the active controller).

        Asked with DescribeQuorum (KIP-595/836), which a broker forwards to the active controller: DescribeCluster and
        Metadata name a random live broker as the "controller" to clients of a KRaft cluster, so they cannot tell."""
        with concurrent.futures.ThreadPoolExecutor(1) as thread:  # its own event loop, whoever calls
            return int(thread.submit(asyncio.run, self._describe_quorum(timeout)).result())

    async def _describe_quorum(self, timeout: float) -> int:
        from aiokafka.conn import create_conn  # noqa: PLC0415

        problems = []
        for node in self.members:
            try:
                conn = await asyncio.wait_for(
                    create_conn(
                        "127.0.0.1",
                        node.port,
                        security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism=MECHANISM,
                        sasl_plain_username=ADMIN,
                        sasl_plain_password=self.password(ADMIN),
                        request_timeout_ms=int(timeout * 1000),
                    ),
                    timeout,
                )
            except Exception as exc:
                problems.append(f"node {node.node_id}: {exc!r}")
                continue
            try:
                answer = (await conn.send(_describe_quorum_request())).to_object()
            except Exception as exc:
                problems.append(f"node {node.node_id}: {exc!r}")
                continue
            finally:
                conn.close()
            partition = answer["topics"][0]["partitions"][0] if answer["topics"] else {}
            if answer["error_code"] == 0 and partition.get("error_code") == 0 and partition["leader_id"] >= 0:
                return int(partition["leader_id"])
            problems.append(f"node {node.node_id}: error {answer['error_code']}/{partition.get('error_code')}")
        raise RuntimeError(f"no node named the quorum's leader: {'; '.join(problems)}")

    def wait_in_sync(self, topics: Iterable[str], timeout: float = 60) -> None:
        """Until every partition of `topics` has all its replicas in sync (a restarted node has caught up)."""
        names = list(topics)
        deadline = time.monotonic() + timeout
        behind: list[str] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                metadata = self._admin().list_topics(timeout=5)
                behind = [
                    f"{name}[{pid}]"
                    for name in names
                    for pid, partition in metadata.topics[name].partitions.items()
                    if set(partition.isrs) != set(partition.replicas)
                ]
                if not behind:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"partitions not in sync after {timeout}s: {', '.join(behind[:10]) or 'unknown'}")

    # -- topics and grants, from deploy/kafka/ ---------------------------------------------------------------------

    def topic_names(self, prefix: str | None = None) -> list[str]:
        prefix = self.topic_prefix if prefix is None else prefix
        return [prefix + topic.name for topic in read_topics()]

    def provision(self, prefix: str | None = None, timeout: float = 60) -> list[str]:
        """Create the topics of topics.txt and grant the ACLs of acls.txt (names prefixed); returns the new topics.

        Idempotent, as the Compose stack's one-shot step: existing topics are left as they are (their configs
        included), existing grants are granted again (a no-op); nothing is revoked."""
        prefix = self.topic_prefix if prefix is None else prefix
        grants = read_grants()
        self.grant(grants, prefix, timeout)
        created = self.create_topics(read_topics(), prefix, timeout)
        self.wait_seen_everywhere(self.topic_names(prefix), grants, prefix, timeout)
        return created

    def wait_seen_everywhere(self, topics: list[str], grants: list[Grant], prefix: str, timeout: float = 60) -> None:
        """Until every running node serves the topics and the grants: each applies the metadata log on its own, so
        a client that signs in right after `provision` may otherwise be refused by a node that lags behind.

        Asked of each node alone, as each principal: the topics it may Describe are the ones a node shows it."""
        visible = {ADMIN: set(topics)}
        for g in grants:
            if g.resource == "topic" and g.operation == "Describe" and g.pattern == "literal":
                visible.setdefault(g.principal, set()).add(prefix + g.name)
        nodes = [node for node in self.members if node.alive]
        with concurrent.futures.ThreadPoolExecutor(1) as thread:  # its own event loop, whoever calls
            thread.submit(asyncio.run, self._wait_seen(nodes, visible, timeout)).result()

    async def _wait_seen(self, nodes: list[KafkaNode], visible: dict[str, set[str]], timeout: float) -> None:
        from aiokafka.cluster import ClusterMetadata  # noqa: PLC0415
        from aiokafka.conn import create_conn  # noqa: PLC0415
        from aiokafka.protocol.metadata import MetadataRequest  # noqa: PLC0415

        async def missing(node: KafkaNode, principal: str, wanted: set[str]) -> set[str]:
            conn = await create_conn(
                "127.0.0.1",
                node.port,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=MECHANISM,
                sasl_plain_username=principal,
                sasl_plain_password=self.password(principal),
                request_timeout_ms=5000,
            )
            try:
                metadata = ClusterMetadata()
                metadata.update_metadata(await conn.send(MetadataRequest(None)))
                seen: set[str] = metadata.topics()
                return wanted - seen
            finally:
                conn.close()

        deadline = time.monotonic() + timeout
        pending = [(node, principal, wanted) for node in nodes for principal, wanted in visible.items()]
        while pending:
            results = await asyncio.gather(*(missing(*check) for check in pending), return_exceptions=True)
            left = [(check, result) for check, result in zip(pending, results, strict=True) if result != set()]
            pending = [check for check, _ in left]
            if left and time.monotonic() > deadline:
                (node, principal, _), result = left[0]
                why = f"missing {sorted(result)[:5]}" if isinstance(result, set) else repr(result)
                raise TimeoutError(f"node {node.node_id} does not serve {principal}'s topics after {timeout}s: {why}")
            if pending:
                await asyncio.sleep(0.1)

    def create_topics(self, topics: Iterable[TopicSpec], prefix: str = "", timeout: float = 60) -> list[str]:
        from confluent_kafka import KafkaError  # noqa: PLC0415
        from confluent_kafka.cimpl import NewTopic  # noqa: PLC0415

        wanted = [
            NewTopic(
                prefix + topic.name,
                num_partitions=self.partitions,
                replication_factor=self.replication_factor,
                config={"min.insync.replicas": str(self.min_insync_replicas), **topic.configs},
            )
            for topic in topics
        ]
        created = []
        admin = self._admin()  # kept: the futures fail when their client is destroyed
        for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
            try:
                future.result(timeout)
                created.append(name)
            except Exception as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        return created

    def grant(self, grants: Iterable[Grant], prefix: str = "", timeout: float = 60) -> None:
        from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType  # noqa: PLC0415
        from confluent_kafka.admin._resource import ResourcePatternType, ResourceType  # noqa: PLC0415

        operations = {
            "Read": AclOperation.READ,
            "Write": AclOperation.WRITE,
            "Describe": AclOperation.DESCRIBE,
            "Create": AclOperation.CREATE,
            "Delete": AclOperation.DELETE,
            "Alter": AclOperation.ALTER,
            "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
            "AlterConfigs": AclOperation.ALTER_CONFIGS,
        }
        bindings = [
            AclBinding(
                ResourceType.TOPIC if g.resource == "topic" else ResourceType.GROUP,
                prefix + g.name,
                ResourcePatternType.LITERAL if g.pattern == "literal" else ResourcePatternType.PREFIXED,
                f"User:{g.principal}",
                "*",
                operations[g.operation],
                AclPermissionType.ALLOW,
            )
            for g in grants
        ]
        if not bindings:
            return
        admin = self._admin()
        futures = admin.create_acls(bindings, request_timeout=timeout)
        concurrent.futures.wait(list(futures.values()), timeout)
        for future in futures.values():
            future.result(0)


# ---------------------------------------------------------------------------------------------------------------
# DescribeQuorum (API key 55, version 0, flexible): aiokafka has no such request; the schema is Kafka's
# clients/src/main/resources/common/message/DescribeQuorum{Request,Response}.json at version 0

METADATA_TOPIC = "__cluster_metadata"


def _describe_quorum_request() -> Any:
    from aiokafka.protocol.api import Request, RequestStruct, Response  # noqa: PLC0415
    from aiokafka.protocol.types import (  # noqa: PLC0415
        CompactArray,
        CompactString,
        Int16,
        Int32,
        Int64,
        Schema,
        TaggedFields,
    )

    replica = (("replica_id", Int32), ("log_end_offset", Int64), ("tags", TaggedFields))

    class DescribeQuorumResponseV0(Response):  # type: ignore[misc]  # aiokafka is untyped
        API_KEY = 55
        API_VERSION = 0
        SCHEMA = Schema(
            ("error_code", Int16),
            (
                "topics",
                CompactArray(
                    ("topic_name", CompactString("utf-8")),
                    (
                        "partitions",
                        CompactArray(
                            ("partition_index", Int32),
                            ("error_code", Int16),
                            ("leader_id", Int32),
                            ("leader_epoch", Int32),
                            ("high_watermark", Int64),
                            ("current_voters", CompactArray(*replica)),
                            ("observers", CompactArray(*replica)),
                            ("tags", TaggedFields),
                        ),
                    ),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class DescribeQuorumRequestV0(RequestStruct):  # type: ignore[misc]
        FLEXIBLE_VERSION = True
        API_KEY = 55
        API_VERSION = 0
        RESPONSE_TYPE = DescribeQuorumResponseV0
        SCHEMA = Schema(
            (
                "topics",
                CompactArray(
                    ("topic_name", CompactString("utf-8")),
                    ("partitions", CompactArray(("partition_index", Int32), ("tags", TaggedFields))),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class DescribeQuorumRequest(Request[DescribeQuorumRequestV0]):  # type: ignore[misc]
        API_KEY = 55

        def build(self, request_struct_class: type[DescribeQuorumRequestV0]) -> DescribeQuorumRequestV0:
            return request_struct_class([(METADATA_TOPIC, [(0, {})], {})], {})

    return DescribeQuorumRequest()
