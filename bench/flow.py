"""The event flow's figures, the four services running as processes, on each broker: a join to its card when idle,
a burst of 1,000, an import of 100,000 and how soon every service has followed it, each consumer's apply rate alone,
and the services' resident memory. Each row comes once per broker, Tansu's then the three-node Apache Kafka
cluster's; on Kafka also the card service's apply rate with two replicas against one.

BENCH_IMPORT makes the big import smaller for a quick look (`make bench` measures 100,000)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench import CpuShares, Row, admin_headers, compared, http_client, postgres_pids
from bench.brokers import REPLICAS, Broker, Brokers, Scope
from bench.membership import make_org
from devstack.platform import Platform
from services.membership.importer import run_import
from tests.integration.test_import import write_roster
from tests.support import data

IDLE_JOINS = 50
BURST = 1_000
IMPORT = int(os.environ.get("BENCH_IMPORT", "100000"))

# what each consumer of membership's topic writes per member
FOLLOWERS = {"servicecard": "cards", "feedback": "directory_members", "transfer": "directory_members"}


async def count(conn: asyncpg.Connection, schema: str, service: str, table: str | None = None) -> int:
    """Members the service holds (0 while it has not made its tables yet): rows of its FOLLOWERS table, or of
    `table`."""
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}{service}.{table or FOLLOWERS[service]}"))
    except asyncpg.UndefinedTableError:
        return 0


async def wait_for(
    conn: asyncpg.Connection,
    schema: str,
    service: str,
    n: int,
    timeout: float = 600,
    check: Callable[[], None] | None = None,
) -> float:
    """Seconds until `service` holds `n` members, to within 0.25 s: a count of 100,000 rows is 10 ms of the database,
    and polled every 20 ms it took a third of the core the services were catching up on. `check` raises when
    waiting on is pointless (the services died)."""
    start = time.perf_counter()
    while await count(conn, schema, service) < n:
        if check is not None:
            check()
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{service} holds fewer than {n} members after {timeout} s")
        await asyncio.sleep(0.25)
    return time.perf_counter() - start


def running(platform: Platform, starting: asyncio.Task[Platform]) -> Callable[[], None]:
    """A check that raises once the services failed to start or one of them exited. Not being ready in time is no
    failure: a process catching up is ready only once it has caught up, and on a loaded machine that takes longer
    than Platform's wait (the counts measure it)."""

    def check() -> None:
        if starting.done() and not starting.cancelled() and not isinstance(starting.exception(), TimeoutError | None):
            raise RuntimeError("the services did not start") from starting.exception()
        for process in platform.processes.values():
            if process.process is not None and process.process.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.process.returncode}; see {process.log_path}")

    return check


async def not_ready(platform: Platform, timeout: float = 10) -> list[str]:
    """What each process that is not ready yet still misses (its /readyz), given `timeout` seconds to get there."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            missing = []
            for process in platform.processes.values():
                answer = await http.get(f"{process.url}/readyz")
                if answer.status_code != 200:
                    missing.append(f"{process.name}: {'; '.join(answer.json().get('missing', [answer.text]))}")
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.5)


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


async def burst_delays(conn: asyncpg.Connection, schemas: str, org: str) -> list[float]:
    """Milliseconds from each imported member's MemberJoined to their CardIssued (the events' commit stamps)."""
    rows = await conn.fetch(
        f"""
        SELECT extract(epoch FROM c.recorded_at - j.recorded_at) * 1000 AS ms
        FROM {schemas}membership.events j
        JOIN {schemas}servicecard.events c
          ON c.event_type = 'CardIssued' AND c.data->>'member_id' = j.data->>'member_id'
        WHERE j.event_type = 'MemberJoined' AND j.data->>'org_id' = $1 AND (j.data->>'imported')::boolean
        """,
        org,
    )
    return [float(r["ms"]) for r in rows]


def catch_up_group(service: str, replicas: int) -> str:
    """The consumer group of a catch-up run, without the topic prefix (as acls.txt names groups)."""
    return f"catchup{replicas}-{service}"


@dataclass(frozen=True)
class CatchUp:
    rate: float  # events/s
    cpu: CpuShares  # the cores each kind of process used meanwhile
    not_ready: list[str]  # the processes still not ready once every member was applied, and why


async def apply_rate(dsn: str, scope: Scope, work: Path, service: str, total: int, replicas: int = 1) -> CatchUp:
    """`service` alone (`replicas` processes of it), from a new consumer group and empty tables, through
    membership's whole topic (`total` members)."""
    schemas = f"{scope.schemas}catchup{replicas}_"
    group = scope.prefix + catch_up_group(service, replicas)
    platform = scope.platform(dsn, work, [service], replicas=replicas, schemas=schemas, CONSUMER_GROUP=group)
    postgres = await postgres_pids(dsn)
    cpu = CpuShares(
        lambda: {
            service: [p.process.pid for p in platform.processes.values() if p.process is not None],
            "PostgreSQL": postgres(),
            scope.broker.name: scope.broker.pids(),
        }
    )
    conn = await asyncpg.connect(dsn)
    starting = asyncio.create_task(asyncio.to_thread(platform.start))
    check = running(platform, starting)
    try:
        # started, and its group joined: from here it only applies
        await wait_for(conn, schemas, service, 1, check=check)
        first = await count(conn, schemas, service)
        with cpu:
            elapsed = await wait_for(conn, schemas, service, total, check=check)
        with contextlib.suppress(TimeoutError):  # not ready in Platform's time: asked below
            await starting
        unready = await not_ready(platform)
    finally:
        with contextlib.suppress(Exception):
            await starting  # every process it started is in `platform.processes`, to be stopped
        await asyncio.to_thread(platform.stop)
        await conn.close()
    return CatchUp((total - first) / elapsed, cpu, unready)


@dataclass
class Figures:
    """One broker's flow."""

    cards: list[float]  # ms from an idle approval's answer to its card
    approvals: list[float]  # ms, those approvals'
    burst: list[float]  # ms from each of the burst's MemberJoined to its CardIssued
    imported: float  # seconds the big import took
    behind: dict[str, float]  # seconds after its end each follower held every member
    idle_rss: dict[str, float]
    rss: dict[str, float]
    joined: int  # members in membership's topic
    rates: dict[str, CatchUp] = field(default_factory=dict)


async def measure(dsn: str, scope: Scope, work: Path) -> Figures:
    """The flow on the scope's broker: the four services, then each consumer alone."""
    await scope.provision([(service, catch_up_group(service, n)) for service in FOLLOWERS for n in (1, REPLICAS)])
    folder = scope.folder(work)
    platform = scope.platform(dsn, work, ["membership", *FOLLOWERS])
    settings = scope.membership_settings(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.to_thread(platform.start)
        org = await make_org(settings)
        idle_rss = rss_mib(platform)
        approvals, cards = await idle_joins(platform, org)  # the first join also waits for the consumers' groups
        burst_org = await make_org(settings)
        roster = folder / "burst.csv"
        write_roster(roster, burst_org, BURST)
        await run_import(roster, 500, settings, show_progress=False)
        joined = IDLE_JOINS + 1 + BURST
        await wait_for(conn, scope.schemas, "servicecard", joined)
        burst = await burst_delays(conn, scope.schemas, burst_org)
        big_org = await make_org(settings)
        roster = folder / "import.csv"
        write_roster(roster, big_org, IMPORT)
        start = time.perf_counter()
        await run_import(roster, 1000, settings, show_progress=False)
        imported = time.perf_counter() - start
        joined += IMPORT
        behind = {service: await wait_for(conn, scope.schemas, service, joined) for service in FOLLOWERS}
        rss = rss_mib(platform)
    finally:
        await conn.close()
        await asyncio.to_thread(platform.stop)
    figures = Figures(cards, approvals, burst, imported, behind, idle_rss, rss, joined)
    for service in FOLLOWERS:
        figures.rates[service] = await apply_rate(dsn, scope, work, service, joined)
    return figures


def rows(f: Figures, broker: Broker) -> list[Row]:
    qa, qc = statistics.quantiles(f.approvals, n=100), statistics.quantiles(f.cards, n=100)
    q = statistics.quantiles(f.burst, n=100)
    services = list(f.rss)
    return [
        (
            broker.named(f"join approved over HTTP → card readable, idle ({IDLE_JOINS} one at a time)"),
            f"p50 {qc[49]:.1f} ms, p99 {qc[98]:.1f} ms",
            f"the approval itself p50 {qa[49]:.1f} ms, p99 {qa[98]:.1f} ms (target p99 < 100 ms)",
        ),
        (
            broker.named(f"MemberJoined → card readable ({BURST:,} members imported at once)"),
            f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms",
            "target p99 < 1,000 ms",
        ),
        (
            broker.named(f"roster import, {IMPORT:,} members, the other services following"),
            f"{f.imported:.1f} s ({IMPORT / f.imported:,.0f} rows/s)",
            "the last card, feedback and transfer member "
            + ", ".join(f"{s} {t:.1f} s" for s, t in f.behind.items())
            + " after the import's end (target: card < 30 s)",
        ),
        (
            broker.named("resident memory after the import (MiB)"),
            ", ".join(f"{s} {f.rss[s]:.0f}" for s in services),
            "idle at start: " + ", ".join(f"{s} {f.idle_rss[s]:.0f}" for s in services),
        ),
        *(
            (
                broker.named(f"apply rate: {service} alone through membership's topic ({f.joined:,} members)"),
                f"{rate.rate:,.0f} events/s",
                f"the import in the same run: {IMPORT / f.imported:,.0f} rows/s" + unready(rate),
            )
            for service, rate in f.rates.items()
        ),
    ]


def unready(catch_up: CatchUp) -> str:
    """What the row says of processes still not ready once they had applied every member (a fault of theirs)."""
    return f"; NOT READY once caught up: {', '.join(catch_up.not_ready)}" if catch_up.not_ready else ""


def side_by_side(*runs: Sequence[Row]) -> list[Row]:
    """Each row of one run next to the same row of the others."""
    return [row for same in zip(*runs, strict=True) for row in same]


async def run(dsn: str, brokers: Brokers, work: Path) -> list[Row]:
    tansu = await measure(dsn, Scope(brokers.tansu, "flow"), work)
    kafka = Scope(await brokers.kafka(), "flowkafka")
    on_kafka = await measure(dsn, kafka, work)
    one = on_kafka.rates["servicecard"]
    two = await apply_rate(dsn, kafka, work, "servicecard", on_kafka.joined, REPLICAS)
    what = f"apply rate: servicecard, {REPLICAS} replicas, through membership's topic ({on_kafka.joined:,} members)"
    return [
        *side_by_side(rows(tansu, brokers.tansu), rows(on_kafka, kafka.broker)),
        (
            kafka.broker.named(what),
            f"{two.rate:,.0f} events/s",
            f"1 replica (above) {one.rate:,.0f} events/s: ×{two.rate / one.rate:.2f}; cores used, 1 → {REPLICAS}: "
            + compared(one.cpu, two.cpu)
            + unready(two),
        ),
    ]
