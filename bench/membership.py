"""Membership's figures: a 100,000-member roster import, and approvals over HTTP with 16 clients (on Tansu; the
replicas part measures them on Kafka with one and two processes of the service)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import CpuShares, LoadClient, Row, admin_headers, http_client, postgres_pids
from bench.brokers import Brokers, Scope, secret_key
from services.membership.domain import OrgType, RegisterOrganization
from services.membership.importer import run_import
from services.membership.service import MembershipService, MembershipSettings
from shared.store import Metadata
from tests.integration.test_import import write_roster
from tests.support import data


def settings(dsn: str, bootstrap: str, schema: str) -> MembershipSettings:
    key = secret_key()
    return MembershipSettings(
        database_url=dsn,
        db_schema=schema,
        kafka_bootstrap_servers=bootstrap,
        pii_master_key=key,
        blind_index_key=key,
        topic_prefix="bench.",
    )


async def make_org(s: MembershipSettings) -> str:
    service = MembershipService(s)
    await service.runtime.start(background=False)
    try:
        async with service.pool.acquire() as conn, conn.transaction():
            org = await service.membership.register_organization(
                conn,
                RegisterOrganization(uuid.uuid4(), "bench township", OrgType.TOWNSHIP, "310115"),
                Metadata(actor="bench"),
            )
    finally:
        await service.runtime.stop()
    return str(org)


async def import_rate(dsn: str, bootstrap: str, work: Path, n: int) -> float:
    s = settings(dsn, bootstrap, "bench_import")
    org = await make_org(s)
    roster = work / "roster.csv"
    write_roster(roster, org, n)
    start = time.perf_counter()
    imported = await run_import(roster, 1000, s, show_progress=False)
    assert imported == n
    return n / (time.perf_counter() - start)


@dataclass(frozen=True)
class Approvals:
    per_s: float
    p50: float  # ms
    p99: float  # ms
    cpu: CpuShares  # the cores each kind of process used while the approvals ran


async def approval_rate(dsn: str, scope: Scope, work: Path, n: int, clients: int, replicas: int = 1) -> Approvals:
    """`n` applications submitted, then approved, over HTTP by `clients` connections spread evenly over membership's
    `replicas` processes (on one schema: each answers any request)."""
    await scope.provision()
    org = await make_org(scope.membership_settings(dsn))  # its schema migrated before the processes start
    platform = scope.platform(dsn, work, ["membership"], replicas=replicas)
    postgres = await postgres_pids(dsn)
    cpu = CpuShares(
        lambda: {
            "membership": [p.process.pid for p in platform.processes.values() if p.process is not None],
            "PostgreSQL": postgres(),
            scope.broker.name: scope.broker.pids(),
            "the bench's clients": [os.getpid()],
        }
    )
    try:
        await asyncio.to_thread(platform.start)
        async with contextlib.AsyncExitStack() as stack:
            https = [
                await stack.enter_async_context(http_client(p.url, clients // replicas, headers=admin_headers()))
                for p in platform.replicas_of("membership")
            ]
            queue: asyncio.Queue[str] = asyncio.Queue()

            async def submit(http: LoadClient) -> None:
                for _ in range(n // clients):
                    r = await http.post("/applications", json=data.application(org))
                    queue.put_nowait(r.json()["application_id"])

            await asyncio.gather(*(submit(https[i % replicas]) for i in range(clients)))
            latencies: list[float] = []

            async def approve(http: LoadClient) -> None:
                while not queue.empty():
                    application_id = queue.get_nowait()
                    t = time.perf_counter()
                    r = await http.post(f"/applications/{application_id}/approve", json={"reviewer": "bench"})
                    latencies.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text

            start = time.perf_counter()
            with cpu:
                await asyncio.gather(*(approve(https[i % replicas]) for i in range(clients)))
            elapsed = time.perf_counter() - start
    finally:
        await asyncio.to_thread(platform.stop)
    q = statistics.quantiles(latencies, n=100)
    return Approvals(len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, cpu)


async def run(dsn: str, brokers: Brokers, work: Path) -> list[Row]:
    rate = await import_rate(dsn, brokers.tansu.bootstrap, work, 100_000)
    rows = [("roster import, 100,000 members", f"{rate:,.0f} rows/s", f"{100_000 / rate:.1f} s (target < 15 s)")]
    http = await approval_rate(dsn, Scope(brokers.tansu, "bench_http"), work, 2000, 16)
    rows.append(
        (
            "approvals over HTTP, 16 clients",
            f"{http.per_s:,.0f} requests/s",
            f"p50 {http.p50:.1f} ms, p99 {http.p99:.1f} ms",
        )
    )
    return rows
