"""The whole platform as `make run` runs it (`python -m devstack.run`, which supervises every process), on ports
and a `.run` folder of its own, and what the fault cases read back from its databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack import kafka, procs
from devstack.broker import CLIENT_ENV
from devstack.kafka import KafkaCluster
from devstack.platform import REPLICA_PORT_STEP, available_services
from devstack.tokens import Issuer

ROOT = Path(__file__).resolve().parents[2]
SERVICES = list(available_services())


def free_ports(count: int, step: int = 1) -> int:
    """A free port `p` such that p + step, ..., p + (count - 1) * step are free too (a cluster's nodes, a service's
    replicas)."""
    while True:
        first = procs.free_port()
        if first + (count - 1) * step > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for i in range(1, count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", first + i * step))
            except OSError:
                continue
        return first


@dataclass
class SupervisedStack:
    """`broker`: `tansu` (one process named `kafka`, memory only) or `kafka` (Apache Kafka, `kafka_nodes` nodes named
    `kafka-1`..); `replicas` processes of every service, named `membership`, `membership-2`, ..."""

    run_dir: Path
    broker: str = "tansu"
    kafka_nodes: int = 1
    replicas: int = 1
    pg_port: int = field(default_factory=procs.free_port)
    kafka_port: int = 0  # the first node's; the others' follow
    console_port: int = field(default_factory=procs.free_port)
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.kafka_port = self.kafka_port or free_ports(self.kafka_nodes)
        self.ports = self.ports or {name: free_ports(self.replicas, REPLICA_PORT_STEP) for name in SERVICES}

    @property
    def instances(self) -> dict[str, str]:
        """Every service process by its name under the supervisor (`membership`, `membership-2`, ...): its URL."""
        return {
            name if n == 0 else f"{name}-{n + 1}": f"http://127.0.0.1:{port + n * REPLICA_PORT_STEP}"
            for name, port in self.ports.items()
            for n in range(self.replicas)
        }

    def replicas_of(self, service: str) -> list[str]:
        return [name for name in self.instances if name.split("-", 1)[0] == service]

    @property
    def kafka_names(self) -> list[str]:
        """The broker's processes under the supervisor."""
        if self.broker == "tansu":
            return ["kafka"]
        return [f"kafka-{n}" for n in range(1, self.kafka_nodes + 1)]

    def cluster(self) -> KafkaCluster:
        """A handle on the Apache Kafka cluster `devstack.run` started (its folder, ports and credentials), to ask
        it things as admin and find its nodes' folders: it starts nothing (the supervisor runs the nodes)."""
        assert self.broker == "kafka"
        return KafkaCluster(
            self.run_dir / "kafka" / f"cluster-{self.kafka_nodes}",
            nodes=self.kafka_nodes,
            ports=[self.kafka_port + i for i in range(self.kafka_nodes)],
        )

    def _link_kafka(self) -> None:
        """Apache Kafka's jars, where `devstack.run` looks for them under this RUN_DIR: a link to the ones `make
        kafka` fetched (the project's `.run`, or RUN_DIR's)."""
        version = kafka.kafka_version()
        target = self.run_dir / "kafka" / version
        if (target / "libs").exists():
            return
        for source in (procs.run_dir() / "kafka" / version, ROOT / ".run" / "kafka" / version):
            if any((source / "libs").glob("kafka_2.13-*.jar")):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                target.symlink_to(source.resolve(), target_is_directory=True)
                return
        raise RuntimeError(f"no Apache Kafka jars in {procs.run_dir() / 'kafka' / version}: run `make kafka`")

    @property
    def log(self) -> Path:
        return self.run_dir / "devstack.log"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "PG_PORT": str(self.pg_port),
            "KAFKA_PORT": str(self.kafka_port),
            "BROKER": self.broker,
            "KAFKA_NODES": str(self.kafka_nodes),
            "REPLICAS": str(self.replicas),
            "CONSOLE_PORT": str(self.console_port),
            "PYTHONPATH": str(ROOT),
            "APPLICATION_RATE_PER_ADDRESS": "1000000/minute",  # the load applies from one address
            "APPLICATION_RATE_PER_PERSON": "1000/minute",
            "RELAY_POLL_INTERVAL": "0.1",
        }
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        # the embedded servers, each service's own schema, and the settings the devstack gives each broker's clients
        for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX", "DB_SCHEMA", *CLIENT_ENV):
            env.pop(name, None)
        return env

    def start(self, timeout: float = 240) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.broker == "kafka":
            self._link_kafka()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack.run"], env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while "\nready:" not in "\n" + self.output(offset):
            if self.process.poll() is not None:
                raise RuntimeError(f"devstack.run exited with {self.process.returncode}:\n{self.output(offset)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"devstack.run not ready after {timeout}s:\n{self.output(offset)}")
            time.sleep(0.2)

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM, as Ctrl-C would: it stops what it started; anything left after `timeout` is killed."""
        if self.process is None:
            return
        left = self.pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            for pid in left.values():  # orphans now: only those whose environment names this stack's folder
                if self._started_here(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        self.process = None

    def _started_here(self, pid: int) -> bool:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"RUN_DIR={self.run_dir}".encode() in environ

    def mark(self) -> int:
        """Where the output ends now: `output(mark)` is what came after."""
        return self.log.stat().st_size

    def output(self, offset: int = 0) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def pids(self) -> dict[str, int]:
        status = self.run_dir / "processes.json"
        if not status.exists():
            return {}
        return {name: part["pid"] for name, part in json.loads(status.read_text()).items() if part["pid"]}

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send `sig` to the process the supervisor names `name`; returns its pid."""
        pid = self.pids()[name]
        os.kill(pid, sig)
        return pid

    @contextlib.contextmanager
    def unsupervised(self) -> Iterator[None]:
        """The supervisor held (SIGSTOP) meanwhile: what dies stays down until the block ends (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def urls(self, service: str) -> list[str]:
        """Every replica's URL of `service`."""
        return [self.instances[name] for name in self.replicas_of(service)]

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"

    def issuer(self) -> Issuer:
        return Issuer.open(self.run_dir / "auth")  # the key `make run` gave the services

    async def all_ready(self, client: httpx.AsyncClient) -> bool:
        return not await self.not_ready(client)

    async def not_ready(self, client: httpx.AsyncClient) -> dict[str, str]:
        """The service processes whose /readyz is not 200, with what they say is missing."""

        async def problem(name: str) -> str | None:
            try:
                answer = await client.get(f"{self.instances[name]}/readyz", timeout=2)
            except httpx.HTTPError as exc:
                return f"no answer ({type(exc).__name__})"
            if answer.status_code == 200:
                return None
            try:
                return "; ".join(answer.json().get("missing", [])) or answer.text[:300]
            except ValueError:
                return answer.text[:300]

        problems = await asyncio.gather(*(problem(name) for name in self.instances))
        return {name: found for name, found in zip(self.instances, problems, strict=True) if found is not None}

    async def readyz(self, client: httpx.AsyncClient, name: str) -> dict[str, Any]:
        """What one service process's /readyz says (its roles among the replicas: `relay`, `partitions`)."""
        return dict((await client.get(f"{self.instances[name]}/readyz", timeout=2)).json())


def _per_member(table: str, member: str, only: str = "TRUE") -> str:
    return f"SELECT {member} AS m, count(*) AS n FROM {table} WHERE {only} AND {member} = ANY($1::text[]) GROUP BY 1"


# each read model a join reaches, as (label, database, query): rows per member among $1, by member id
PER_MEMBER = [
    (
        "MemberJoined",
        "membership",
        _per_member("membership.events", "data->>'member_id'", "event_type = 'MemberJoined'"),
    ),
    ("CardIssued", "servicecard", _per_member("servicecard.events", "data->>'member_id'", "event_type = 'CardIssued'")),
    ("cards", "servicecard", _per_member("servicecard.cards", "member_id::text")),
    ("transfer", "transfer", _per_member("transfer.directory_members", "member_id::text")),
    ("feedback", "feedback", _per_member("feedback.directory_members", "member_id::text")),
    ("dues", "dues", _per_member("dues.dues_accounts", "member_id::text")),  # one account per member who joined
    # the card's way back: membership's inbox, which the member's history reads
    (
        "dossier",
        "membership",
        _per_member(
            "membership.inbox", "envelope->'data'->>'member_id'", "event_type = 'union.servicecard.CardIssued.v1'"
        ),
    ),
]
MODELS = [label for label, _, _ in PER_MEMBER]


async def rows_per_member(stack: SupervisedStack, members: Sequence[str]) -> dict[str, dict[str, int]]:
    """For each read model, how many rows each of `members` has there (absent: none)."""
    found: dict[str, dict[str, int]] = {}
    connections: dict[str, asyncpg.Connection] = {}
    try:
        for label, database, query in PER_MEMBER:
            if database not in connections:
                connections[database] = await asyncpg.connect(stack.dsn(database), timeout=2)
            rows = await connections[database].fetch(query, list(members))
            found[label] = {r["m"]: r["n"] for r in rows}
    finally:
        for conn in connections.values():
            await conn.close()
    return found


async def everywhere(stack: SupervisedStack, members: Sequence[str]) -> set[str]:
    """Those of `members` that every read model holds (an empty set while the database is down)."""
    try:
        found = await rows_per_member(stack, members)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return set()
    return set(members).intersection(*(set(rows) for rows in found.values()))
