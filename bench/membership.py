"""Membership's figures: a 100,000-member roster import, and approvals over HTTP with 16 clients."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
import uuid
from pathlib import Path

from bench import admin_headers, http_client
from devstack import procs
from devstack.platform import ServiceProcess
from services.membership.domain import OrgType, RegisterOrganization
from services.membership.importer import run_import
from services.membership.service import MembershipService, MembershipSettings
from shared.store import Metadata
from tests.integration.test_import import write_roster
from tests.support import data


def settings(dsn: str, bootstrap: str, schema: str) -> MembershipSettings:
    key = base64.b64encode(os.urandom(32)).decode()
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


async def approval_rate(dsn: str, bootstrap: str, work: Path, n: int, clients: int) -> tuple[float, float, float]:
    s = settings(dsn, bootstrap, "bench_http")
    org = await make_org(s)
    env = {
        **os.environ,
        "PYTHONPATH": str(procs.ROOT_DIR),
        "LOG_LEVEL": "WARNING",
        **{k.upper(): str(v) for k, v in s.model_dump().items()},
    }
    port = procs.free_port()
    env["PORT"] = str(port)
    service = ServiceProcess("membership", port, env, work / "bench-membership.log")
    service.start()
    try:
        await asyncio.to_thread(service.wait_ready)
        async with http_client(service.url, clients, headers=admin_headers()) as http:
            queue: asyncio.Queue[str] = asyncio.Queue()

            async def submit() -> None:
                for _ in range(n // clients):
                    r = await http.post("/applications", json=data.application(org))
                    queue.put_nowait(r.json()["application_id"])

            await asyncio.gather(*(submit() for _ in range(clients)))
            latencies: list[float] = []

            async def approve() -> None:
                while not queue.empty():
                    application_id = queue.get_nowait()
                    t = time.perf_counter()
                    r = await http.post(f"/applications/{application_id}/approve", json={"reviewer": "bench"})
                    latencies.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text

            start = time.perf_counter()
            await asyncio.gather(*(approve() for _ in range(clients)))
            elapsed = time.perf_counter() - start
    finally:
        service.stop()
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000


async def run(dsn: str, bootstrap: str, work: Path) -> list[tuple[str, str, str]]:
    rate = await import_rate(dsn, bootstrap, work, 100_000)
    rows = [("roster import, 100,000 members", f"{rate:,.0f} rows/s", f"{100_000 / rate:.1f} s (target < 15 s)")]
    per_s, p50, p99 = await approval_rate(dsn, bootstrap, work, 2000, 16)
    rows.append(("approvals over HTTP, 16 clients", f"{per_s:,.0f} requests/s", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
    return rows
