"""`make run`: the embedded PostgreSQL and broker, the topics, and every service, in the foreground.

DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS point the same services at external servers instead (each
service then keeps its tables in a schema named after it). Ctrl-C or SIGTERM stops everything started here.
Everything started here is watched: a process that dies is reaped, reported and started again (PostgreSQL
on its data directory and port, the broker on its port with its topics created again, as it forgets them).
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

from devstack import procs
from devstack.broker import TansuBroker
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

SECRETS = ("PII_MASTER_KEY", "BLIND_INDEX_KEY", "BALLOT_MASTER_KEY")


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


def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30) -> list[str]:
    """Create what is missing, trying again while a broker that has just started does not answer yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return asyncio.run(create_topics(bootstrap, names, partitions=partitions))
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def watched_service(service: ServiceProcess) -> Supervised:
    def restart() -> None:
        service.start()

    return Supervised(service.name, lambda: service.process, restart, service.ready, service.url)


def main() -> None:  # noqa: C901, PLR0915 - one place that starts and stops everything, in order
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
        topics = all_topic_names(os.environ.get("TOPIC_PREFIX", ""))
        partitions = int(os.environ.get("TOPIC_PARTITIONS", "3"))
        if not bootstrap:
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
        issuer = Issuer.open(run / "auth")  # `make token` signs with it; the services get its public key
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AUTH_JWKS": str(issuer.jwks_path), **dev_secrets(run)}
        if broker is not None:  # it forgets on stop what nobody read: consumers read on while the relays stop
            env["CONSUMER_DRAIN_SECONDS"] = os.environ.get("CONSUMER_DRAIN_SECONDS", "2")
        replicas = int(os.environ.get("REPLICAS", "1"))  # `make run REPLICAS=2`: a second of each on port + 100
        platform = Platform(env, database_urls, run, ports, replicas=replicas).start()
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
        if postgres is not None:
            postgres.stop()
        (run / "processes.json").unlink(missing_ok=True)
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
