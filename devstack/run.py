"""`make run`: the embedded PostgreSQL and broker, the topics, and every service, in the foreground.

DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS point the same services at external servers instead (each
service then keeps its tables in a schema named after it). Ctrl-C or SIGTERM stops everything started here.
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
from devstack.platform import Platform, all_topic_names, available_services
from devstack.postgres import EmbeddedPostgres
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


def main() -> None:  # noqa: C901, PLR0915 - one place that starts and stops everything, in order
    run = procs.run_dir()
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        print(f"\n{signal.Signals(signum).name}: stopping…", flush=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    services = available_services()
    postgres: EmbeddedPostgres | None = None
    broker: TansuBroker | None = None
    platform: Platform | None = None
    try:
        if external := os.environ.get("DATABASE_URL"):
            database_urls = dict.fromkeys(services, external)
        else:
            postgres = EmbeddedPostgres(run / "pg", int(os.environ.get("PG_PORT", "5433"))).start()
            asyncio.run(create_databases(postgres.dsn, list(services)))
            database_urls = {name: postgres.dsn_for(name) for name in services}
            print(f"postgres   {postgres.dsn}  (data in {run / 'pg'})")
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = TansuBroker(int(os.environ.get("KAFKA_PORT", "9092")), run).start()
            bootstrap = broker.bootstrap
            print(f"kafka      {bootstrap}  (Tansu, memory only)")
        created = asyncio.run(
            create_topics(
                bootstrap,
                all_topic_names(os.environ.get("TOPIC_PREFIX", "")),
                partitions=int(os.environ.get("TOPIC_PARTITIONS", "3")),
            )
        )
        print(f"topics     {len(created)} created")
        issuer = Issuer.open(run / "auth")  # `make token` signs with it; the services get its public key
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AUTH_JWKS": str(issuer.jwks_path), **dev_secrets(run)}
        platform = Platform(env, database_urls, run, services).start()
        for name, process in platform.processes.items():
            print(f"{name:<12}{process.url}  (docs {process.url}/docs, log {process.log_path})")
        print(f"{'tokens':<12}make token ROLE=admin  (ROLE=staff ORG=<id>, ROLE=member MEMBER=<id>; README)")
        print("ready: Ctrl-C stops everything", flush=True)
        while not stopping:
            for process in platform.processes.values():
                if process.process is not None and process.process.poll() is not None and not stopping:
                    process.restarts += 1
                    print(f"{process.name} exited ({process.process.returncode}); restarting", flush=True)
                    process.start()
            time.sleep(0.5)
    except Exception as exc:
        print(f"make run failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    finally:
        if platform is not None:
            platform.stop()
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
