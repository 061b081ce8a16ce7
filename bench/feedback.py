"""Feedback's figures: sealed ballots over HTTP against another write of the same service, and the close of a
campaign of 100,000 sealed ballots (added up, the sums and every comment box opened, the ciphertexts deleted)."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench import LoadClient, admin_headers, http_client
from bench.brokers import Brokers
from devstack import procs
from devstack.platform import ServiceProcess, all_topic_names
from devstack.tokens import Issuer
from services.feedback import sealing
from services.feedback.domain import Ballot
from shared.envelope import Envelope
from shared.messaging import create_topics, make_producer
from shared.settings import KernelSettings

PREFIX = "bench4."
SCHEMA = "bench4_feedback"
VOTERS = 3000  # cast over HTTP
CLOSED = 100_000  # in the campaign whose close is timed
CLIENTS = 32


async def run(dsn: str, brokers: Brokers, work: Path) -> list[tuple[str, str, str]]:
    bootstrap = brokers.tansu.bootstrap  # Tansu's figures only
    await create_topics(bootstrap, all_topic_names(PREFIX))
    org, voters = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(VOTERS)]
    await publish_electorate(bootstrap, org, voters)
    port = procs.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(procs.ROOT_DIR),
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
        "DATABASE_URL": dsn,
        "DB_SCHEMA": SCHEMA,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": PREFIX,
        "BALLOT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    service = ServiceProcess("feedback", port, env, work / "bench-feedback.log")
    service.start()
    try:
        await asyncio.to_thread(service.wait_ready)
        await directory_filled(dsn, VOTERS)
        async with http_client(service.url, CLIENTS, timeout=120, headers=admin_headers()) as http:
            campaign = await open_campaign(http, org)
            ballots = await per_second(http, voters, lambda v: (f"/campaigns/{campaign}/ballots", ballot(v)))
            raised = await per_second(
                http, voters, lambda v: ("/requests", {"member_id": v, "category": "wages", "text": "加班费"})
            )
            big = await open_campaign(http, org)
            seal_ms, stored = await fill(dsn, uuid.UUID(big))
            start = time.perf_counter()
            r = await http.post(f"/campaigns/{big}/close")
            close_s = time.perf_counter() - start
            assert r.status_code == 200, r.text
            results = (await http.get(f"/campaigns/{big}/results")).json()
            assert results["turnout"] == CLOSED
            assert results["distribution"] == {str(s): n for s, n in sorted(expected(CLOSED).items())}
    finally:
        service.stop()
    (per_s, p50, p99, first), (raised_s, *_) = ballots, raised
    return [
        (
            f"sealed ballots over HTTP, {CLIENTS} clients, {VOTERS:,} voters",
            f"{per_s:,.0f} ballots/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            (
                f"requests raised (an event append) {raised_s:,.0f}/s: {per_s / raised_s:.0%}; "
                f"a seal {seal_ms:.2f} ms; each connection's first, apart: up to {first:.0f} ms"
            ),
        ),
        (
            f"close and tally of {CLOSED:,} sealed ballots (one in three with a comment)",
            f"{close_s:.1f} s",
            f"{stored / 1e6:,.0f} MB of ciphertext read, 5 sums and {CLOSED:,} comment boxes opened",
        ),
    ]


def score_of(i: int) -> int:
    return 1 + (i * 7) % 5


def expected(n: int) -> Counter[int]:
    return Counter(score_of(i) for i in range(n))


def ballot(voter: str) -> dict[str, Any]:
    return {"score": 1 + int(voter[:2], 16) % 5, "comment": "希望多组织职工活动" if voter[2] in "0123" else None}


async def publish_electorate(bootstrap: str, org: str, members: list[str]) -> None:
    """What membership would publish about an organisation and its members, straight onto its topic."""
    now = datetime.now(UTC)
    producer = make_producer(KernelSettings(kafka_bootstrap_servers=bootstrap), "bench-feedback")
    await producer.start()
    try:

        def fact(kind: str, key: str, data: dict[str, Any]) -> Envelope:
            return Envelope(
                id=uuid.uuid4(),
                source="/union/membership",
                type=f"union.membership.{kind}.v1",
                time=now,
                partitionkey=key,
                data=data,
            )

        org_data = {
            "org_id": org,
            "name": "基准工会",
            "type": "township",
            "parent_id": None,
            "region_code": "310115",
            "accepts_members": True,
        }
        facts = [(org, fact("OrganizationRegistered", org, org_data))]
        # the rest of membership's published MemberJoined (published/membership.py): a reader refuses one without it
        joined = {"joined_at": "2020-01-01", "employment_type": "regular", "household_type": "urban"}
        facts += [
            (m, fact("MemberJoined", m, {**joined, "member_id": m, "member_no": f"B{i:09d}", "org_id": org}))
            for i, m in enumerate(members)
        ]
        for key, envelope in facts:
            _, headers, value = envelope.to_kafka()
            await producer.send(f"{PREFIX}union.membership.v1", value, key=key.encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def directory_filled(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 120
        while await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.directory_members") < n:
            assert time.monotonic() < deadline, "feedback did not hear of the electorate within 120 s"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def open_campaign(http: LoadClient, org: str) -> str:
    now = datetime.now(UTC)
    body = {
        "title": "基准评议",
        "subject_type": "organization",
        "subject_id": org,
        "electorate_org_id": org,
        "electorate": "members",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=1)).isoformat(),
    }
    r = await http.post("/campaigns", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["campaign_id"])


async def per_second(http: LoadClient, voters: list[str], call: Any) -> tuple[float, float, float, float]:
    """Each voter sends one request with their own token; `CLIENTS` at a time. Requests/s, p50 and p99 in ms with
    every connection warm, and the slowest first request of a connection (sent before the clock starts: a new
    connection, and pool connections whose statements are not prepared yet, as for the redemptions)."""
    issuer = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent)
    tokens = {v: {"Authorization": f"Bearer {issuer.mint('member', member_id=v)}"} for v in voters}
    queue = list(voters)

    async def send(voter: str) -> float:
        path, body = call(voter)
        t = time.perf_counter()
        r = await http.post(path, json=body, headers=tokens[voter])
        assert r.status_code == 201, r.text
        return time.perf_counter() - t

    firsts = await asyncio.gather(*(send(queue.pop()) for _ in range(CLIENTS)))
    latencies: list[float] = []

    async def client() -> None:
        while queue:
            latencies.append(await send(queue.pop()))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, max(firsts) * 1000


def seal_chunk(key: bytes, first: int, count: int) -> list[tuple[bytes, bytes]]:
    """Ballots sealed as the service seals them (in worker processes: 100,000 take a minute of CPU)."""
    public = sealing.PublicBallotKey.from_bytes(key)
    sealed = [
        sealing.seal(public, Ballot(score_of(i), f"意见{i}" if i % 3 == 0 else None))
        for i in range(first, first + count)
    ]
    return [(s.score, s.comment) for s in sealed]


async def fill(dsn: str, campaign: uuid.UUID) -> tuple[float, int]:
    """Drop CLOSED sealed ballots and their register rows into the campaign's box; returns ms per seal and bytes."""
    conn = await asyncpg.connect(dsn)
    try:
        key = bytes(await conn.fetchval(f"SELECT public_key FROM {SCHEMA}.ballot_box WHERE campaign_id = $1", campaign))
        chunk = 5000
        loop = asyncio.get_running_loop()
        start = time.process_time()
        seal_chunk(key, 0, 200)
        seal_ms = (time.process_time() - start) / 200 * 1000
        stored = 0
        with ProcessPoolExecutor(max_workers=2) as pool:
            parts = [loop.run_in_executor(pool, seal_chunk, key, i, chunk) for i in range(0, CLOSED, chunk)]
            for part in asyncio.as_completed(parts):
                rows = await part
                stored += sum(len(a) + len(b) for a, b in rows)
                await conn.copy_records_to_table(
                    "sealed_ballots", schema_name=SCHEMA, records=[(campaign, a, b) for a, b in rows]
                )
        await conn.copy_records_to_table(
            "voted", schema_name=SCHEMA, records=[(campaign, uuid.uuid4()) for _ in range(CLOSED)]
        )
    finally:
        await conn.close()
    return seal_ms, stored


if __name__ == "__main__":
    from bench.__main__ import main

    main(["feedback"])
