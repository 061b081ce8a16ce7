"""`make run`: the embedded PostgreSQL and broker, the topics, and every service, in the foreground.

The broker (BROKER=kafka|tansu): Apache Kafka (devstack/kafka.py) wherever Java is, KAFKA_NODES nodes (1 or 3) with
their data under `.run/kafka/`, SASL/SCRAM and the ACLs of deploy/kafka/, each service signed in as its own
principal; else Tansu, memory only, which forgets everything when it stops (a restart publishes every log again).

DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS point the same services at external servers instead (each
service then keeps its tables in a schema named after it). Ctrl-C or SIGTERM stops everything started here.
Everything started here is watched: a process that dies is reaped, reported and started again (PostgreSQL
on its data directory and port, each Kafka node on its data and port, Tansu on its port with its topics created
again, as it forgets them).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import asyncpg

from devstack import kafka, procs
from devstack.broker import CLIENT_ENV, TansuBroker
from devstack.kafka import KafkaCluster, KafkaNode
from devstack.platform import (
    CONSOLE_PORT,
    Platform,
    ServiceProcess,
    all_topic_names,
    available_services,
    console_process,
)
from devstack.postgres import EmbeddedPostgres
from devstack.supervise import Supervised, Supervisor
from devstack.tokens import Issuer
from shared.messaging import create_topics
from shared.settings import KafkaSecurity, KernelSettings

SECRETS = ("PII_MASTER_KEY", "BLIND_INDEX_KEY", "BALLOT_MASTER_KEY")
# Apache Kafka's nodes under make run (KAFKA_NODES): see README, "Configuration", for the start-up measured
DEFAULT_KAFKA_NODES = 1
TANSU_COST = "memory only: a restart forgets every topic and record, and the services publish their whole logs again"


def dev_secrets(run: Path) -> dict[str, str]:
    """Keys for personal data and ballots, made once per `.run/` (the embedded database keeps data between runs).

    A key missing from an older `.run/secrets.env` is added; one already there is never replaced.
    """
    path = run / "secrets.env"
    known = dict(line.split("=", 1) for line in path.read_text().split()) if path.exists() else {}
    missing = {name: base64.b64encode(secrets.token_bytes(32)).decode() for name in SECRETS if name not in known}
    if missing:
        with path.open("a") as out:
            out.writelines(f"{name}={value}\n" for name, value in missing.items())
        path.chmod(0o600)
    return {**known, **missing}


async def create_databases(dsn: str, names: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def service_ports() -> dict[str, int]:
    """8001-8004, or MEMBERSHIP_PORT, TRANSFER_PORT, SERVICECARD_PORT, FEEDBACK_PORT."""
    return {name: int(os.environ.get(f"{name.upper()}_PORT", port)) for name, port in available_services().items()}


def choose_broker() -> tuple[str, str]:
    """`kafka` or `tansu`, and why: BROKER when set, else Apache Kafka where there is Java and its jars (`make run`
    fetches them first, where there is Maven), else Tansu."""
    wanted = os.environ.get("BROKER", "").strip().lower()
    if wanted not in {"", "kafka", "tansu"}:
        raise RuntimeError(f"BROKER must be kafka or tansu, not {wanted!r}")
    if wanted == "tansu":
        return "tansu", "BROKER=tansu"
    problem = None
    if kafka.java() is None:
        problem = "no `java` on PATH nor in JAVA_HOME (Apache Kafka needs Java 17)"
    else:
        try:
            kafka.kafka_libs()
        except RuntimeError as exc:
            problem = str(exc)
    if problem is None:
        return "kafka", "BROKER=kafka" if wanted else "Java is here"
    if wanted == "kafka":
        raise RuntimeError(f"BROKER=kafka: {problem}")
    return "tansu", problem


def kafka_nodes() -> int:
    nodes = int(os.environ.get("KAFKA_NODES", DEFAULT_KAFKA_NODES))
    if nodes not in {1, 3}:
        raise RuntimeError(f"KAFKA_NODES must be 1 or 3, not {nodes}")
    return nodes


def ensure_topics(
    bootstrap: str, names: list[str], partitions: int, timeout: float = 30, security: KafkaSecurity | None = None
) -> list[str]:
    """Create what is missing, trying again while a broker that has just started does not answer yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return asyncio.run(create_topics(bootstrap, names, partitions=partitions, security=security))
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def watched_service(service: ServiceProcess) -> Supervised:
    def restart() -> None:
        service.start()

    return Supervised(service.name, lambda: service.process, restart, service.ready, service.url)


def start_kafka(run: Path, supervisor: Supervisor, prefix: str, partitions: int) -> KafkaCluster:
    """Apache Kafka, each node watched: one that dies is started again on its data and port."""
    nodes = kafka_nodes()
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    cluster = KafkaCluster(
        run / "kafka" / f"cluster-{nodes}",
        nodes=nodes,
        ports=[port + i for i in range(nodes)],
        topic_prefix=prefix,
        partitions=partitions,
    )
    started = time.monotonic()
    cluster.start()
    replication = f"replication {cluster.replication_factor}, min.insync.replicas {cluster.min_insync_replicas}"
    print(
        f"kafka      {cluster.bootstrap}  (Apache Kafka {kafka.kafka_version()}, {nodes} node{'s' * (nodes > 1)}, "
        f"{replication}, SASL/SCRAM; up in {time.monotonic() - started:.1f} s; data in {cluster.root})"
    )
    for node in cluster.members:
        supervisor.watch(watched_node(cluster, node))
    return cluster


def watched_node(cluster: KafkaCluster, node: KafkaNode) -> Supervised:
    """A node started again without waiting for it to serve (the supervisor asks, and says when it does): a node
    that comes back while the others are down serves only once a quorum is back, and the supervisor must not
    block meanwhile. A node whose data folder is gone is formatted again and refills from the others."""

    def restart() -> str:
        formatted = node.formatted
        cluster.start_node(node.node_id, wait=False)
        return "same data and port" if formatted else "its data was gone: formatted again, it refills from the others"

    def ready() -> bool:
        return cluster.serves(node.node_id)

    return Supervised(f"kafka-{node.node_id}", lambda: node.process, restart, ready, url=node.bootstrap)


def main() -> None:  # noqa: C901, PLR0912, PLR0915 - one place that starts and stops everything, in order
    run = procs.run_dir()
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        print(f"\n{signal.Signals(signum).name}: stopping…", flush=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ports = service_ports()
    postgres: EmbeddedPostgres | None = None
    broker: TansuBroker | None = None
    cluster: KafkaCluster | None = None
    platform: Platform | None = None
    console: ServiceProcess | None = None
    supervisor = Supervisor(status_file=run / "processes.json")
    try:
        if external := os.environ.get("DATABASE_URL"):
            database_urls = dict.fromkeys(ports, external)
        else:
            pg = postgres = EmbeddedPostgres(run / "pg", int(os.environ.get("PG_PORT", "5433"))).start()
            asyncio.run(create_databases(pg.dsn, list(ports)))
            database_urls = {name: pg.dsn_for(name) for name in ports}
            print(f"postgres   {pg.dsn}  (data in {run / 'pg'})")

            def restart_postgres() -> str:
                pg.restart()
                return "same data directory, crash recovery done"

            supervisor.watch(Supervised("postgres", lambda: pg.process, restart_postgres, url=pg.dsn))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        prefix = os.environ.get("TOPIC_PREFIX", "")
        topics = all_topic_names(prefix)
        partitions = int(os.environ.get("TOPIC_PARTITIONS", "3"))
        env: dict[str, str] = {}
        service_env = None
        if bootstrap:  # an external cluster: its topics made if missing, signed in as the environment says
            created = ensure_topics(bootstrap, topics, partitions, security=KernelSettings().kafka_security())
            print(f"topics     {len(created)} created")
        elif (chosen := choose_broker())[0] == "kafka":
            cluster = start_kafka(run, supervisor, prefix, partitions)
            bootstrap = cluster.bootstrap
            service_env = cluster.service_env  # each service signs in as its own principal
            print(f"topics     {len(cluster.topic_names())} of deploy/kafka/topics.txt, with the grants of acls.txt")
        else:
            print(f"broker     Tansu, not Apache Kafka: {chosen[1]}; {TANSU_COST}")
            tansu = broker = TansuBroker(int(os.environ.get("KAFKA_PORT", "9092")), run).start()
            bootstrap = tansu.bootstrap

            def restart_broker() -> str:
                tansu.restart()
                try:
                    created = ensure_topics(tansu.bootstrap, topics, partitions)
                except Exception:
                    tansu.stop()  # a broker without its topics is no use: the next look starts it again
                    raise
                return f"memory only: it came back empty, {len(created)} topics created again"

            print(f"kafka      {bootstrap}  (Tansu, memory only)")
            supervisor.watch(Supervised("kafka", lambda: tansu.process, restart_broker, url=bootstrap))
            created = ensure_topics(bootstrap, topics, partitions)
            print(f"topics     {len(created)} created")
            # no idempotent producer, a short group session; and it forgets on stop what nobody read: consumers
            # read on while the relays stop
            env |= CLIENT_ENV
            env["CONSUMER_DRAIN_SECONDS"] = os.environ.get("CONSUMER_DRAIN_SECONDS", "2")
        issuer = Issuer.open(run / "auth")  # `make token` signs with it; the services get its public key
        env |= {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AUTH_JWKS": str(issuer.jwks_path), **dev_secrets(run)}
        replicas = int(os.environ.get("REPLICAS", "1"))  # `make run REPLICAS=2`: a second of each on port + 100
        platform = Platform(env, database_urls, run, ports, replicas=replicas, service_env=service_env).start()
        for name, process in platform.processes.items():
            print(f"{name:<12}{process.url}  (docs {process.url}/docs, log {process.log_path})")
            supervisor.watch(watched_service(process))
        console = console_process(platform, int(os.environ.get("CONSOLE_PORT", CONSOLE_PORT)), run, issuer.folder)
        console.start()
        console.wait_ready()
        print(f"{'console':<12}{console.url}  (sign in there with a role; log {console.log_path})")
        supervisor.watch(watched_service(console))
        supervisor.write_status()
        print(f"{'tokens':<12}make token ROLE=admin  (ROLE=staff ORG=<id>, ROLE=member MEMBER=<id>; README)")
        print("ready: Ctrl-C stops everything; what dies is restarted", flush=True)
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
    except Exception as exc:
        print(f"make run failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    finally:
        if console is not None:
            console.stop()
        if platform is not None:
            platform.stop()
        if broker is not None:
            broker.stop()
        if cluster is not None:
            cluster.stop()
        if postgres is not None:
            postgres.stop()
        (run / "processes.json").unlink(missing_ok=True)
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
