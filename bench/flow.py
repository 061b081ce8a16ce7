"""The event flow's figures, the four services running as processes: a join to its card when idle, a burst of
1,000, an import of 100,000 and how soon every service has followed it, each consumer's apply rate alone, and
the services' resident memory."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
from pathlib import Path

import asyncpg

from bench import admin_headers, http_client
from bench.membership import make_org
from devstack import procs
from devstack.platform import Platform, all_topic_names
from services.membership.importer import run_import
from services.membership.service import MembershipSettings
from shared.messaging import create_topics
from tests.integration.test_import import write_roster
from tests.support import data

PREFIX = "flow."
SCHEMAS = "flow_"
IDLE_JOINS = 50
BURST = 1_000
IMPORT = 100_000
Row = tuple[str, str, str]
# what each consumer of membership's topic writes per member
FOLLOWERS = {"servicecard": "cards", "feedback": "directory_members", "transfer": "directory_members"}


def _env(bootstrap: str, key: str, schema_prefix: str, **more: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": PREFIX,
        "DB_SCHEMA_PREFIX": schema_prefix,
        "PII_MASTER_KEY": key,
        "BLIND_INDEX_KEY": key,
        "BALLOT_MASTER_KEY": key,
        "LOG_LEVEL": "WARNING",
        **more,
    }


async def count(conn: asyncpg.Connection, schema: str, service: str) -> int:
    """Members the service holds (0 while it has not made its tables yet)."""
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}{service}.{FOLLOWERS[service]}"))
    except asyncpg.UndefinedTableError:
        return 0


async def wait_for(conn: asyncpg.Connection, schema: str, service: str, n: int, timeout: float = 600) -> float:
    """Seconds until `service` holds `n` members, to within 0.25 s: a count of 100,000 rows is 10 ms of the database,
    and polled every 20 ms it took a third of the core the services were catching up on."""
    start = time.perf_counter()
    while await count(conn, schema, service) < n:
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{service} holds fewer than {n} members after {timeout} s")
        await asyncio.sleep(0.25)
    return time.perf_counter() - start


def rss_mib(platform: Platform) -> dict[str, float]:
    """Each service's resident memory, from /proc."""
    out = {}
    for name, process in platform.processes.items():
        assert process.process is not None
        status = Path(f"/proc/{process.process.pid}/status").read_text(encoding="utf-8")
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        out[name] = kib / 1024
    return out


async def idle_joins(platform: Platform, org: str) -> tuple[list[float], list[float]]:
    """One join at a time: the approval's own latency, and from its answer until the card service shows the card."""
    approvals, cards = [], []
    headers = admin_headers()
    async with (
        http_client(platform.url("membership"), headers=headers) as m,
        http_client(platform.url("servicecard"), headers=headers) as c,
    ):
        for i in range(IDLE_JOINS + 1):
            application = (await m.post("/applications", json=data.application(org))).json()["application_id"]
            await asyncio.sleep(0.05)  # idle: nothing else in flight
            start = time.perf_counter()
            approved = await m.post(f"/applications/{application}/approve", json={"reviewer": "bench"})
            answered = time.perf_counter()
            assert approved.status_code == 200, approved.text
            member_id = approved.json()["member_id"]
            while (await c.get(f"/members/{member_id}/card")).status_code != 200:
                if time.perf_counter() - start > 30:
                    raise TimeoutError("no card 30 s after an approval")
            if i:  # the first one warms every connection up
                approvals.append((answered - start) * 1000)
                cards.append((time.perf_counter() - answered) * 1000)
    return approvals, cards


async def burst_delays(conn: asyncpg.Connection, org: str) -> list[float]:
    """Milliseconds from each imported member's MemberJoined to their CardIssued (the events' commit stamps)."""
    rows = await conn.fetch(
        f"""
        SELECT extract(epoch FROM c.recorded_at - j.recorded_at) * 1000 AS ms
        FROM {SCHEMAS}membership.events j
        JOIN {SCHEMAS}servicecard.events c
          ON c.event_type = 'CardIssued' AND c.data->>'member_id' = j.data->>'member_id'
        WHERE j.event_type = 'MemberJoined' AND j.data->>'org_id' = $1 AND (j.data->>'imported')::boolean
        """,
        org,
    )
    return [float(r["ms"]) for r in rows]


async def apply_rates(dsn: str, bootstrap: str, key: str, work: Path, total: int) -> dict[str, float]:
    """Each consumer alone, from a new group and empty tables, through membership's whole topic: events/s."""
    rates = {}
    conn = await asyncpg.connect(dsn)
    try:
        for service in FOLLOWERS:
            schema = f"{SCHEMAS}again_"
            env = _env(bootstrap, key, schema, CONSUMER_GROUP=f"{PREFIX}again-{service}")
            platform = Platform(env, {service: dsn}, work, {service: procs.free_port()})
            starting = asyncio.create_task(asyncio.to_thread(platform.start))  # ready only once caught up
            try:
                await wait_for(conn, schema, service, 1)  # started, and its group joined: from here it only applies
                first = await count(conn, schema, service)
                rates[service] = (total - first) / await wait_for(conn, schema, service, total)
                await starting
            finally:
                await asyncio.to_thread(platform.stop)
    finally:
        await conn.close()
    return rates


async def run(dsn: str, bootstrap: str, work: Path) -> list[Row]:
    key = base64.b64encode(os.urandom(32)).decode()
    await create_topics(bootstrap, all_topic_names(PREFIX))
    ports = {name: procs.free_port() for name in ("membership", *FOLLOWERS)}
    platform = await asyncio.to_thread(
        Platform(_env(bootstrap, key, SCHEMAS), dict.fromkeys(ports, dsn), work, ports).start
    )
    settings = MembershipSettings(
        database_url=dsn,
        db_schema=f"{SCHEMAS}membership",
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=PREFIX,
        pii_master_key=key,
        blind_index_key=key,
    )
    conn = await asyncpg.connect(dsn)
    rows: list[Row] = []
    try:
        org = await make_org(settings)
        idle_rss = rss_mib(platform)
        approvals, cards = await idle_joins(platform, org)  # the first join also waits for the consumers' groups
        qa, qc = statistics.quantiles(approvals, n=100), statistics.quantiles(cards, n=100)
        rows.append(
            (
                f"join approved over HTTP → card readable, idle ({IDLE_JOINS} one at a time)",
                f"p50 {qc[49]:.1f} ms, p99 {qc[98]:.1f} ms",
                f"the approval itself p50 {qa[49]:.1f} ms, p99 {qa[98]:.1f} ms (target p99 < 100 ms)",
            )
        )
        burst_org = await make_org(settings)
        roster = work / "burst.csv"
        write_roster(roster, burst_org, BURST)
        await run_import(roster, 500, settings, show_progress=False)
        joined = IDLE_JOINS + 1 + BURST
        await wait_for(conn, SCHEMAS, "servicecard", joined)
        q = statistics.quantiles(await burst_delays(conn, burst_org), n=100)
        rows.append(
            (
                f"MemberJoined → card readable ({BURST:,} members imported at once)",
                f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms",
                "target p99 < 1,000 ms",
            )
        )
        big_org = await make_org(settings)
        roster = work / "import.csv"
        write_roster(roster, big_org, IMPORT)
        start = time.perf_counter()
        await run_import(roster, 1000, settings, show_progress=False)
        imported = time.perf_counter() - start
        joined += IMPORT
        behind = {service: await wait_for(conn, SCHEMAS, service, joined) for service in FOLLOWERS}
        rss = rss_mib(platform)
        rows.append(
            (
                f"roster import, {IMPORT:,} members, the other services following",
                f"{imported:.1f} s ({IMPORT / imported:,.0f} rows/s)",
                "the last card, feedback and transfer member "
                + ", ".join(f"{s} {t:.1f} s" for s, t in behind.items())
                + " after the import's end (target: card < 30 s)",
            )
        )
        rows.append(
            (
                "resident memory after the import (MiB)",
                ", ".join(f"{s} {rss[s]:.0f}" for s in ports),
                "idle at start: " + ", ".join(f"{s} {idle_rss[s]:.0f}" for s in ports),
            )
        )
    finally:
        await conn.close()
        await asyncio.to_thread(platform.stop)
    rates = await apply_rates(dsn, bootstrap, key, work, joined)
    rows.extend(
        (
            f"apply rate: {service} alone through membership's topic ({joined:,} members)",
            f"{rate:,.0f} events/s",
            f"the import in the same run: {IMPORT / imported:,.0f} rows/s",
        )
        for service, rate in rates.items()
    )
    return rows
