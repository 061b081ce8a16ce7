"""The whole platform as `make run` runs it (`python -m devstack.run`, which supervises every process), on ports
and a `.run` folder of its own, and what the fault cases read back from its databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from devstack import procs
from devstack.platform import available_services
from devstack.tokens import Issuer

ROOT = Path(__file__).resolve().parents[2]
SERVICES = list(available_services())


@dataclass
class SupervisedStack:
    run_dir: Path
    pg_port: int = field(default_factory=procs.free_port)
    kafka_port: int = field(default_factory=procs.free_port)
    ports: dict[str, int] = field(default_factory=lambda: {name: procs.free_port() for name in SERVICES})
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.run_dir / "devstack.log"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "PG_PORT": str(self.pg_port),
            "KAFKA_PORT": str(self.kafka_port),
            # the cases are Tansu's (one broker process named `kafka`, memory only): not yet on the Kafka cluster
            "BROKER": "tansu",
            "PYTHONPATH": str(ROOT),
            "APPLICATION_RATE_PER_ADDRESS": "1000000/minute",  # the load applies from one address
            "APPLICATION_RATE_PER_PERSON": "1000/minute",
            "RELAY_POLL_INTERVAL": "0.1",
        }
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX", "DB_SCHEMA"):
            env.pop(name, None)  # the embedded servers, and each service's own schema
        return env

    def start(self, timeout: float = 180) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
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

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        os.kill(self.pids()[name], sig)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"

    def issuer(self) -> Issuer:
        return Issuer.open(self.run_dir / "auth")  # the key `make run` gave the services

    async def all_ready(self, client: httpx.AsyncClient) -> bool:
        async def ready(service: str) -> bool:
            try:
                return (await client.get(f"{self.url(service)}/readyz", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

        return all(await asyncio.gather(*(ready(s) for s in SERVICES)))


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
