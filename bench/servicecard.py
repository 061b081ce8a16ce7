"""The card service's figures: redemptions over HTTP with 32 clients (the flow part measures cards following joins)."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
from pathlib import Path

import asyncpg

from bench import admin_headers, http_client
from bench.brokers import Brokers
from bench.membership import make_org
from devstack import procs
from devstack.platform import Platform, all_topic_names
from services.membership.importer import run_import
from services.membership.service import MembershipSettings
from shared.messaging import create_topics
from tests.integration.test_import import write_roster

CARDS = 1000


async def run(dsn: str, brokers: Brokers, work: Path) -> list[tuple[str, str, str]]:
    bootstrap = brokers.tansu.bootstrap  # Tansu's figures only
    key = base64.b64encode(os.urandom(32)).decode()
    prefix = "bench3."
    await create_topics(bootstrap, all_topic_names(prefix))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA_PREFIX": "bench3_",
        "PII_MASTER_KEY": key,
        "BLIND_INDEX_KEY": key,
        "LOG_LEVEL": "WARNING",
    }
    ports = {"membership": procs.free_port(), "servicecard": procs.free_port()}
    platform = await asyncio.to_thread(Platform(env, dict.fromkeys(ports, dsn), work, ports).start)
    try:
        settings = MembershipSettings(
            database_url=dsn,
            db_schema="bench3_membership",
            kafka_bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            pii_master_key=key,
            blind_index_key=key,
        )
        org = await make_org(settings)
        roster = work / "cards.csv"
        write_roster(roster, org, CARDS)
        await run_import(roster, 500, settings, show_progress=False)
        await cards_issued(dsn)
        per_s, p50, p99, first = await redemptions(platform.url("servicecard"), dsn)
    finally:
        await asyncio.to_thread(platform.stop)
    return [
        (
            f"redemptions over HTTP, 32 clients, {CARDS:,} cards",
            f"{per_s:,.0f} requests/s",
            (
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 150 ms); each connection's first, apart: "
                f"up to {first:.0f} ms"
            ),
        ),
    ]


async def cards_issued(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 120
        while await conn.fetchval("SELECT count(*) FROM bench3_servicecard.cards") < CARDS:
            assert time.monotonic() < deadline, "cards were not all issued within 120 s"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def redemptions(url: str, dsn: str, total: int = 5000, clients: int = 32) -> tuple[float, float, float, float]:
    """Requests/s, p50 and p99 in ms with every connection warm, and the slowest first request of a connection.

    Each client's first redemption opens its connection and meets pool connections whose statements are not
    prepared yet (57-195 ms, measured): it is timed apart, so the figure is the service's steady state, as the
    approvals' (warmed by the submissions before them) are."""
    conn = await asyncpg.connect(dsn)
    try:
        cards = [r["card_no"] for r in await conn.fetch("SELECT card_no FROM bench3_servicecard.cards")]
    finally:
        await conn.close()
    async with http_client(url, clients, headers=admin_headers()) as http:
        item = await http.post(
            "/catalog/items", json={"name": "职工书屋", "category": "culture", "provider": "区工会", "standard": "借阅"}
        )
        item_id = item.json()["item_id"]

        async def redeem(card_no: str) -> float:
            t = time.perf_counter()
            r = await http.post(f"/cards/{card_no}/redemptions", json={"item_id": item_id})
            assert r.status_code == 201, r.text
            return time.perf_counter() - t

        firsts = await asyncio.gather(*(redeem(cards[-1 - n]) for n in range(clients)))
        latencies: list[float] = []

        async def client(n: int) -> None:
            for i in range(total // clients):
                latencies.append(await redeem(cards[(n * 97 + i) % len(cards)]))  # noqa: PERF401 - one at a time

        start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, max(firsts) * 1000
