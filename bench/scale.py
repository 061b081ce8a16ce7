"""`make scale` (`python -m bench.scale [N ...]`): a province-sized run anyone can repeat, one table per run.

For each N (members; by default 100,000 then 1,000,000, each on a stack of its own, started afresh under
`.run/bench/scale/n<N>/`: durable PostgreSQL, one Apache Kafka node as `make run` has it, the five services as
processes) it measures, and writes docs/scale.md with a column per N:

1. The tree, through membership's code (as bench.membership.make_org does): a city federation, 10 counties, 10
   townships under each, N/250 enterprise unions under the townships (at least 8; sizes lognormal, median about
   100, a few of 2,500 and more, one of exactly 2,500 - N/8 below N = 20,000 - under the first township of the
   first county: "the enterprise" below), 2 industry federations per county.
2. The first load as one pipeline: a roster of N members (98% in the enterprise unions, 2% in the industry
   federations; every employment type and household type, joined_at spread over 1990-2026) imported by
   membership's importer, then every follower until it holds every member: servicecard's cards, dues' accounts,
   feedback's and transfer's directories. Each stage is counted every 5 s (every 1 s below N = 100,000): its rate
   over the first and the last tenth of the members, and the time from the import's start to the last follower's
   last member (the headline; issue 28's target: 1,000,000 within 20 minutes on 2 cores).
3. A year of activity, over HTTP by 16 clients, in proportion to N (at least 20 of each):
   N/500 transfers (requested, released, accepted; a tenth left waiting, for the queues), a check-off remittance
   for this month from every fifth enterprise (about a fifth of the members, 5,000 lines a request), then the
   month's dues review of every account (the dues scheduler's step, run by the bench and timed; the dues process's
   own scheduler is pushed out of the run, where it would wake an hour after the start), N/500 members'
   requests (half of them answered), N/200 suspensions, N/1,000 terminations, N/2,000 applications left waiting in
   the county. No lapse: a lapse needs a six-month case, and the accounts open on the day of the import.
4. The county office's reads (a staff token of the first county, its subtree), each by 16 clients, SCALE_REQUESTS
   requests each (default 200) after 10 of warm-up, at most 120 s a read: p50 and p99 in ms.
5. Sizes and memory: each service schema's size and its biggest tables, the Kafka topics on the node's disk, the
   resident memory of each service, the Kafka JVM and PostgreSQL (its processes summed: RSS, and PSS, which counts
   shared buffers once).
6. Rates, projected to 16.6 million members (events per member of this run x 16.6M / rate), the services stopped:
   rebuilding membership's statistics (member_counts) and servicecard's cards (unionctl rebuild's code), verifying
   every store's hash chains (EventStore.verify), and republishing membership's log into a fresh topic prefix (its
   relay, as `unionctl republish` starts it, from position 1).

Develop with a small N (`make scale N=2000`, SCALE_REQUESTS=20): the default runs take hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from rich.console import Console
from rich.table import Table

from bench import CpuShares, LoadClient, admin_headers, http_client, postgres_pids
from bench.__main__ import machine
from bench.brokers import Broker, Scope, kafka_name, start_kafka
from bench.flow import count, rss_mib, running
from devstack import procs
from devstack.kafka import KafkaCluster
from devstack.platform import Platform
from devstack.postgres import EmbeddedPostgres
from devstack.tokens import Issuer
from services.membership.domain import OrgType, RegisterOrganization
from services.membership.importer import COLUMNS, run_import
from services.membership.service import MembershipService, MembershipSettings
from shared.outbox import republish_from
from shared.store import Metadata
from tests.support import data
from unionctl import ops

DEFAULT_N = (100_000, 1_000_000)
PROJECTED = 16_600_000  # the province's members
KAFKA_NODES = 1  # make run's default
SERVICES = ["membership", "transfer", "servicecard", "feedback", "dues"]
# each stage of the first load: (service, the table that holds a row per member)
STAGES = {
    "import": ("membership", "members"),
    "servicecard": ("servicecard", "cards"),
    "dues": ("dues", "dues_accounts"),
    "feedback": ("feedback", "directory_members"),
    "transfer": ("transfer", "directory_members"),
}
COUNTIES = 10
TOWNSHIPS = 10  # under each county
INDUSTRY_FEDERATIONS = 2  # under each county
MEAN_ENTERPRISE = 250
FLAGSHIP = 2_500
IN_FEDERATIONS = 0.02  # the members the industry federations hold
CLIENTS = 16
REQUESTS = int(os.environ.get("SCALE_REQUESTS", "200"))  # per client and read, after the warm-up
WARMUP = 10
READ_BUDGET = 120.0  # seconds a read may take at most, its warm-up included
AS_OF = date(2018, 12, 31)
REVIEW_OFF = str(30 * 24 * 3600)  # the dues scheduler's interval in the run: the bench runs the month's review itself
FIRST_JOIN, LAST_JOIN = date(1990, 1, 1), date(2026, 6, 30)
# Shanghai's districts: the counties' region codes
REGIONS = ["310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112", "310113", "310114"]
INDUSTRIES = ["制造业", "建筑业", "交通运输业", "批发和零售业", "住宿和餐饮业", "信息技术服务业", "金融业", "卫生"]
EMPLOYMENT = {"regular": 62, "dispatched": 13, "flexible": 13, "platform": 12}
FEDERATION_EMPLOYMENT = {"flexible": 45, "platform": 45, "dispatched": 10}
HOUSEHOLD = {"urban": 58, "rural": 42}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"

console = Console(stderr=True)
T = TypeVar("T")


def say(text: str) -> None:
    console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {text}")


# -- the tree and the roster ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Union:
    org_id: str
    name: str
    county: int
    credit_code: str | None
    size: int  # members on the roster


@dataclass
class Tree:
    city: str
    counties: list[str]
    townships: list[list[str]]  # by county
    enterprises: list[Union]  # the first is the flagship
    federations: list[Union]
    lookup_ids: list[str] = field(default_factory=list)  # identity numbers of the flagship's members (never moved)

    @property
    def county(self) -> str:
        return self.counties[0]

    @property
    def flagship(self) -> Union:
        return self.enterprises[0]

    @property
    def orgs(self) -> int:
        return 1 + len(self.counties) + sum(map(len, self.townships)) + len(self.enterprises) + len(self.federations)


def sizes(n: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """Members of each enterprise union (the flagship first) and of each industry federation: N in all."""
    in_federations = round(n * IN_FEDERATIONS)
    federations = COUNTIES * INDUSTRY_FEDERATIONS
    fed = [in_federations // federations + (1 if i < in_federations % federations else 0) for i in range(federations)]
    enterprises = max(n // MEAN_ENTERPRISE, 8)
    flagship = min(FLAGSHIP, n // 8)
    rest = n - in_federations - flagship
    sigma = 1.3  # median about 100 at a mean of 250: many small unions, a few of 2,500 and more
    mu = math.log(MEAN_ENTERPRISE) - sigma**2 / 2
    drawn = [rng.lognormvariate(mu, sigma) for _ in range(enterprises - 1)]
    scale = (rest - 2 * len(drawn)) / sum(drawn)
    ent = [2 + int(x * scale) for x in drawn]
    for i in range(rest - sum(ent)):  # what the rounding left
        ent[i % len(ent)] += 1
    return [flagship, *ent], fed


async def build_tree(settings: MembershipSettings, n: int, rng: random.Random) -> Tree:
    """The organisations through membership's own code, a transaction per 200."""
    service = MembershipService(settings)
    await service.runtime.start(background=False)
    commands: list[RegisterOrganization] = []

    def register(name: str, org_type: OrgType, region: str, parent: str | None, **extra: Any) -> str:
        org_id = uuid.uuid4()
        commands.append(
            RegisterOrganization(
                org_id, name, org_type, region, parent_id=uuid.UUID(parent) if parent else None, **extra
            )
        )
        return str(org_id)

    city = register("示范市总工会", OrgType.CITY, "310000", None)
    counties, townships, federations = [], [], []
    ent_sizes, fed_sizes = sizes(n, rng)
    for c, region in enumerate(REGIONS[:COUNTIES]):
        county = register(f"第{c + 1}区总工会", OrgType.COUNTY, region, city)
        counties.append(county)
        townships.append(
            [register(f"第{c + 1}区第{t + 1}镇总工会", OrgType.TOWNSHIP, region, county) for t in range(TOWNSHIPS)]
        )
        for f in range(INDUSTRY_FEDERATIONS):
            industry = INDUSTRIES[(c + f) % len(INDUSTRIES)]
            name = f"第{c + 1}区{industry}工会联合会"
            org = register(name, OrgType.FEDERATION, region, county, subtype="industry", industry=industry)
            federations.append(Union(org, name, c, None, fed_sizes[c * INDUSTRY_FEDERATIONS + f]))
    enterprises = []
    for i, size in enumerate(ent_sizes):
        t = i % (COUNTIES * TOWNSHIPS)
        c = t // TOWNSHIPS
        industry = INDUSTRIES[i % len(INDUSTRIES)]
        name = f"示范{i + 1}号{industry}有限公司工会"
        code = data.credit_code()
        org = register(
            name, OrgType.ENTERPRISE, REGIONS[c], townships[c][t % TOWNSHIPS], credit_code=code, industry=industry
        )
        enterprises.append(Union(org, name, c, code, size))
    try:
        for start in range(0, len(commands), 200):
            async with service.pool.acquire() as conn, conn.transaction():
                for cmd in commands[start : start + 200]:
                    await service.membership.register_organization(conn, cmd, Metadata(actor="bench:scale"))
    finally:
        await service.runtime.stop()
    return Tree(city, counties, townships, enterprises, federations)


def choose(weights: dict[str, int], rng: random.Random) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def write_roster(path: Path, tree: Tree, rng: random.Random, lookups: int = 1000) -> int:
    """The members of every union, in the roster's columns (services/membership/importer.py), union after union."""
    span = (LAST_JOIN - FIRST_JOIN).days
    unions = [(u, EMPLOYMENT) for u in tree.enterprises] + [(u, FEDERATION_EMPLOYMENT) for u in tree.federations]
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for union, employment in unions:
            for _ in range(union.size):
                id_number = data.identity_number()
                if union is tree.flagship and len(tree.lookup_ids) < lookups and rng.random() < 0.4:
                    tree.lookup_ids.append(id_number)
                writer.writerow(
                    [
                        union.org_id,
                        rng.choice(SURNAMES)
                        + chr(0x4E00 + rng.randrange(20_000))
                        + chr(0x4E00 + rng.randrange(20_000)),
                        id_number,
                        data.phone(),
                        union.credit_code or "",
                        union.name.removesuffix("工会") if union.credit_code else "",
                        choose(employment, rng),
                        choose(HOUSEHOLD, rng),
                        (FIRST_JOIN + timedelta(days=rng.randrange(span))).isoformat(),
                    ]
                )
                rows += 1
    return rows


# -- the first load --------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since the import began, members)
    done: float | None = None

    def crossing(self, level: float) -> float:
        """When the count reached `level`, between the samples around it."""
        previous = (0.0, 0)
        for t, c in self.samples:
            if c >= level:
                t0, c0 = previous
                return t0 + (t - t0) * (level - c0) / max(c - c0, 1)
            previous = (t, c)
        return math.nan

    def tenth_rates(self, n: int) -> tuple[float, float]:
        """Members/s over the first and the last tenth of the members."""
        first = (n / 10 - 1) / max(self.crossing(n / 10) - self.crossing(1), 1e-9)
        last = (n - 0.9 * n) / max(self.crossing(n) - self.crossing(0.9 * n), 1e-9)
        return first, last


@dataclass
class Load:
    imported: float  # seconds
    stages: dict[str, Stage]
    total: float  # seconds from the import's start to the last follower's last member
    cores: CpuShares


async def first_load(
    conn: asyncpg.Connection,
    scope: Scope,
    settings: MembershipSettings,
    roster: Path,
    n: int,
    check: Callable[[], None],
    cpu: CpuShares,
) -> Load:
    every = 5.0 if n >= 100_000 else 1.0
    stages = {name: Stage() for name in STAGES}
    start = time.perf_counter()
    with cpu:
        importing = asyncio.create_task(run_import(roster, 1000, settings, show_progress=False))
        imported = math.nan
        next_report = 60.0
        while True:
            now = time.perf_counter() - start
            for name, (service, table) in STAGES.items():
                stage = stages[name]
                if stage.done is not None:
                    continue
                held = await count(conn, scope.schemas, service, table)
                stage.samples.append((time.perf_counter() - start, held))
                if held >= n:
                    stage.done = stage.samples[-1][0]
            if importing.done() and math.isnan(imported):
                if importing.exception() is not None:
                    raise RuntimeError("the import failed") from importing.exception()
                imported = time.perf_counter() - start
                stages["import"].done = imported
                stages["import"].samples.append((imported, n))
            if all(s.done is not None for s in stages.values()):
                break
            check()
            if now > next_report:
                say(", ".join(f"{k} {s.samples[-1][1]:,}" for k, s in stages.items()))
                next_report += 60
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - start - now)))
    total = max(s.done or 0.0 for s in stages.values())
    return Load(imported, stages, total, cpu)


# -- a year of activity ----------------------------------------------------------------------------------------------


@dataclass
class Activity:
    done: dict[str, int] = field(default_factory=dict)  # what, how many
    failed: dict[str, int] = field(default_factory=dict)
    first_failure: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    review: Rate | None = None  # the month's dues review, every account

    def record(self, what: str, reply_ok: bool, text: str = "") -> None:
        if reply_ok:
            self.done[what] = self.done.get(what, 0) + 1
        else:
            self.failed[what] = self.failed.get(what, 0) + 1
            self.first_failure.setdefault(what, text[:300])


async def each(items: Iterable[T], act: Callable[[T], Awaitable[None]], clients: int = CLIENTS) -> None:
    """`act` on every item, `clients` at a time."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            await act(item)

    await asyncio.gather(*(worker() for _ in range(clients)))


async def sample(conn: asyncpg.Connection, schemas: str, k: int, where: str = "", *args: Any) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT member_id, member_no, org_id FROM {schemas}membership.members"
            f" WHERE status = 'active' {where} ORDER BY random() LIMIT {k}",
            *args,
        )
    )


async def activity(
    dsn: str, conn: asyncpg.Connection, scope: Scope, platform: Platform, tree: Tree, n: int, rng: random.Random
) -> Activity:
    act = Activity()
    started = time.perf_counter()
    admin = admin_headers()
    issuer = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent)
    volume = {
        "transfers": max(n // 500, 20),
        "requests": max(n // 500, 20),
        "suspensions": max(n // 200, 20),
        "terminations": max(n // 1000, 20),
        "applications": max(n // 2000, 20),
    }
    # none of the flagship's members: the lookups by identity number find them in the county (tree.lookup_ids)
    picked = await sample(
        conn,
        scope.schemas,
        sum(v for k, v in volume.items() if k != "applications"),
        "AND org_id <> $1::uuid",
        tree.flagship.org_id,
    )
    chosen: dict[str, list[asyncpg.Record]] = {}
    at = 0
    for what in ("transfers", "requests", "suspensions", "terminations"):
        chosen[what] = picked[at : at + volume[what]]
        at += volume[what]
    targets = [u.org_id for u in tree.enterprises]
    month = datetime.now(UTC).date().replace(day=1)
    async with contextlib.AsyncExitStack() as stack:
        http = {
            name: await stack.enter_async_context(http_client(platform.url(name), CLIENTS, headers=admin, timeout=120))
            for name in SERVICES
        }
        # check-off for this month from every fifth enterprise: its members, 5,000 lines a request
        remitting = [u for i, u in enumerate(tree.enterprises) if i % 5 == 0]

        held: dict[str, list[str]] = {}
        for r in await conn.fetch(
            f"SELECT org_id::text, member_no FROM {scope.schemas}membership.members WHERE org_id = ANY($1::uuid[])",
            [u.org_id for u in remitting],
        ):
            held.setdefault(r["org_id"], []).append(r["member_no"])

        async def remit(union: Union) -> None:
            numbers = held.get(union.org_id, [])
            for first in range(0, len(numbers), 5000):
                lines = [{"member_no": no, "amount": "20.00"} for no in numbers[first : first + 5000]]
                r = await http["dues"].post(
                    f"/organizations/{union.org_id}/checkoff",
                    json={"month": f"{month:%Y-%m}", "file_name": f"scale-{first}.csv", "lines": lines},
                )
                act.record("check-off requests", r.status_code == 201, r.text)
                if r.status_code == 201:
                    act.done["check-off lines"] = act.done.get("check-off lines", 0) + len(lines)

        say(f"activity: check-off from {len(remitting)} enterprises")
        await each(remitting, remit, 4)
        say("activity: the month's dues review, every account")
        act.review = await review(scope, dsn, n)

        async def transfer(i_row: tuple[int, asyncpg.Record]) -> None:
            i, row = i_row
            to = rng.choice(targets)
            while to == str(row["org_id"]):
                to = rng.choice(targets)
            r = await http["transfer"].post(
                "/transfers", json={"member_id": str(row["member_id"]), "to_org_id": to, "reason": "换工作"}
            )
            act.record("transfers requested", r.status_code == 201, r.text)
            if r.status_code != 201 or i % 10 == 0:  # a tenth stays waiting
                return
            transfer_id = r.json()["transfer_id"]
            for step in ("release", "accept"):
                r = await http["transfer"].post(f"/transfers/{transfer_id}/{step}", json={})
                act.record(f"transfers {step}{'d' if step.endswith('e') else 'ed'}", r.status_code == 200, r.text)
                if r.status_code != 200:
                    return

        say(f"activity: {volume['transfers']:,} transfers")
        await each(enumerate(chosen["transfers"]), transfer)

        async def request(i_row: tuple[int, asyncpg.Record]) -> None:
            i, row = i_row
            member = {"Authorization": f"Bearer {issuer.mint('member', member_id=row['member_id'], name='member')}"}
            r = await http["feedback"].post(
                "/requests",
                json={
                    "member_id": str(row["member_id"]),
                    "category": rng.choice(["wages", "safety", "welfare", "legal"]),
                    "text": "加班费没有按时发放",
                },
                headers=member,
            )
            act.record("requests raised", r.status_code == 201, r.text)
            if r.status_code == 201 and i % 2 == 0:
                r = await http["feedback"].post(
                    f"/requests/{r.json()['request_id']}/answer", json={"text": "已协调解决"}
                )
                act.record("requests answered", r.status_code == 200, r.text)

        say(f"activity: {volume['requests']:,} requests")
        await each(enumerate(chosen["requests"]), request)

        def change(verb: str, reason: str) -> Callable[[asyncpg.Record], Awaitable[None]]:
            async def one(row: asyncpg.Record) -> None:
                r = await http["membership"].post(f"/members/{row['member_id']}/{verb}", json={"reason": reason})
                act.record(f"members {verb}{'d' if verb.endswith('e') else 'ed'}", r.status_code == 200, r.text)

            return one

        say(f"activity: {volume['suspensions']:,} suspensions, {volume['terminations']:,} terminations")
        await each(chosen["suspensions"], change("suspend", "欠缴会费"))
        await each(chosen["terminations"], change("terminate", "退休离职"))

        county_unions = [u.org_id for u in tree.enterprises if u.county == 0]

        async def apply(i: int) -> None:
            body = data.application(
                county_unions[i % len(county_unions)],
                employment_type=choose(EMPLOYMENT, rng),
                household_type=choose(HOUSEHOLD, rng),
            )
            r = await http["membership"].post("/applications", json=body)
            act.record("applications waiting", r.status_code == 201, r.text)

        await each(range(volume["applications"]), apply)
    # membership applies the completed transfers when it reads them: wait for that (at most 5 minutes)
    moved = act.done.get("transfers accepted", 0)
    deadline = time.monotonic() + 300
    ids = [r["member_id"] for r in chosen["transfers"]]
    arrived = 0
    while time.monotonic() < deadline:
        arrived = await conn.fetchval(
            f"SELECT count(*) FROM {scope.schemas}membership.members m"
            " JOIN unnest($1::uuid[], $2::uuid[]) AS before (member_id, org_id) ON before.member_id = m.member_id"
            " WHERE m.org_id <> before.org_id",
            ids,
            [r["org_id"] for r in chosen["transfers"]],
        )
        if arrived >= moved:
            break
        await asyncio.sleep(1)
    act.done["transfers applied by membership"] = arrived
    if arrived < moved:
        act.failed["transfers not applied by membership in 300 s"] = moved - arrived
    act.seconds = time.perf_counter() - started
    return act


async def review(scope: Scope, dsn: str, n: int) -> Rate:
    """The dues scheduler's monthly step (DuesService.review_step: every account not assessed for this month yet
    assessed, the six-month cases opened), run here and timed. The dues process's own scheduler is pushed out of the
    run (REVIEW_OFF): it would otherwise wake an hour after the start, in whatever part of the run that is."""
    service = ops.load_service("dues", **service_settings(scope, dsn, "dues"))
    await service.start(background=False)
    try:
        start = time.perf_counter()
        assessed = int(await service.review_step())
        return Rate(assessed, time.perf_counter() - start, assessed / n)
    finally:
        await service.stop()


# -- the county office's reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    what: str
    service: str
    path: Callable[[int], str]
    body: Callable[[int], Any] | None = None  # a POST's


@dataclass
class Timed:
    p50: float
    p99: float
    requests: int
    errors: int
    first_error: str = ""


async def timed(client: LoadClient, read: Read, headers: dict[str, str]) -> Timed:
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + READ_BUDGET
    counter = iter(range(10**9))

    async def one_client() -> None:
        for n in range(WARMUP + REQUESTS):
            if time.perf_counter() > deadline:
                return
            i = next(counter)
            t = time.perf_counter()
            if read.body is None:
                r = await client.get(read.path(i), headers=headers)
            else:
                r = await client.post(read.path(i), json=read.body(i), headers=headers)
            elapsed = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
            elif n >= WARMUP:
                latencies.append(elapsed)

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    if len(latencies) < 2:
        return Timed(math.nan, math.nan, len(latencies), len(errors), errors[0] if errors else "")
    q = statistics.quantiles(latencies, n=100)
    return Timed(q[49], q[98], len(latencies), len(errors), errors[0] if errors else "")


async def reads(conn: asyncpg.Connection, scope: Scope, platform: Platform, tree: Tree) -> dict[str, Timed]:
    county, flagship = tree.county, tree.flagship
    staff = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent).mint("staff", org_id=county, name="county clerk")
    headers = {"Authorization": f"Bearer {staff}"}
    county_orgs = [u.org_id for u in tree.enterprises + tree.federations if u.county == 0]
    members = await sample(conn, scope.schemas, 500, "AND org_id = ANY($1::uuid[])", county_orgs)
    ids = [str(r["member_id"]) for r in members]
    numbers = [r["member_no"] for r in members]
    id_numbers = tree.lookup_ids or ["11010519491231002X"]
    this_month = datetime.now(UTC).date()
    words = ["有限公司", "第1区", "制造业", "第1区第3镇", "信息技术", "示范1", "联合会", "工会"]
    q = urllib.parse.quote
    plan = [
        Read("statistics of the county's subtree", "membership", lambda _: f"/organizations/{county}/stats"),
        Read(
            f"statistics of the enterprise of {FLAGSHIP:,} (N/8 below N = 20,000)",
            "membership",
            lambda _: f"/organizations/{flagship.org_id}/stats",
        ),
        Read(
            f"the enterprise's statistics as of {AS_OF}",
            "membership",
            lambda _: f"/organizations/{flagship.org_id}/stats?as_of={AS_OF}",
        ),
        Read(
            f"the county's statistics as of {AS_OF}",
            "membership",
            lambda _: f"/organizations/{county}/stats?as_of={AS_OF}",
        ),
        Read(
            f"members by status as of {AS_OF} (dues)",
            "dues",
            lambda _: f"/organizations/{county}/members-by-status?as_of={AS_OF}",
        ),
        Read(
            f"dues report {this_month:%Y}-01..{this_month:%m}",
            "dues",
            lambda _: f"/organizations/{county}/dues/report?first={this_month:%Y}-01&last={this_month:%Y-%m}",
        ),
        Read("work queue of the subtree", "membership", lambda _: f"/organizations/{county}/queue?subtree=true"),
        Read(
            "work queue: overdue transfers",
            "membership",
            lambda _: f"/organizations/{county}/queue?subtree=true&kind=transfer&overdue=true",
        ),
        Read(
            "the enterprise's requests (feedback)", "feedback", lambda _: f"/organizations/{flagship.org_id}/requests"
        ),
        Read("six-month cases of the subtree (dues)", "dues", lambda _: f"/organizations/{county}/dues/cases"),
        Read(
            "the enterprise's roster, a page of 50",
            "membership",
            lambda _: f"/organizations/{flagship.org_id}/members?limit=50",
        ),
        Read("organisation search", "membership", lambda i: f"/organizations/search?q={q(words[i % len(words)])}"),
        Read("a member's overview", "membership", lambda i: f"/members/{ids[i % len(ids)]}/overview"),
        Read("a member's dossier", "membership", lambda i: f"/members/{ids[i % len(ids)]}/history"),
        Read(
            "lookup by member number",
            "membership",
            lambda _: "/members/lookup",
            lambda i: {"member_no": numbers[i % len(numbers)]},
        ),
        Read(
            "lookup by identity number",
            "membership",
            lambda _: "/members/lookup",
            lambda i: {"id_number": id_numbers[i % len(id_numbers)]},
        ),
    ]
    out = {}
    async with contextlib.AsyncExitStack() as stack:
        http = {
            name: await stack.enter_async_context(http_client(platform.url(name), CLIENTS, timeout=120))
            for name in SERVICES
        }
        for read in plan:
            out[read.what] = result = await timed(http[read.service], read, headers)
            say(
                f"read: {read.what}: p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms, {result.errors} errors"
                + (f" (the first: {result.first_error})" if result.errors else "")
            )
    return out


# -- sizes and memory ------------------------------------------------------------------------------------------------


@dataclass
class Sizes:
    schemas: dict[str, tuple[int, list[tuple[str, int]]]]  # service: (bytes, the biggest tables)
    topics: dict[str, int]  # topic (without the prefix): bytes on the node's disk
    memory: dict[str, float]  # MiB
    events: dict[str, int]  # service: events in its store
    rows: dict[str, int]  # "service.table": rows


async def sizes_of(
    conn: asyncpg.Connection, scope: Scope, cluster: KafkaCluster, platform: Platform, postgres: Callable[[], list[int]]
) -> Sizes:
    schemas = {}
    events = {}
    for service in SERVICES:
        schema = f"{scope.schemas}{service}"
        tables = [
            (r["relname"], int(r["size"]))
            for r in await conn.fetch(
                "SELECT c.relname, pg_total_relation_size(c.oid) AS size FROM pg_class c"
                " JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relkind IN ('r', 'p', 'm')"
                " ORDER BY size DESC",
                schema,
            )
        ]
        schemas[service] = (sum(size for _, size in tables), tables[:4])
        events[service] = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.events"))
    rows = {}
    for service, table in [
        ("membership", "inbox"),
        ("servicecard", "inbox"),
        ("dues", "dues_ledger"),
        ("membership", "member_count_history"),
    ]:
        with contextlib.suppress(asyncpg.UndefinedTableError):
            rows[f"{service}.{table}"] = int(
                await conn.fetchval(f"SELECT count(*) FROM {scope.schemas}{service}.{table}")
            )
    topics: dict[str, int] = {}
    for node in cluster.members:
        for folder in node.data_dir.glob(f"{scope.prefix}*"):
            topic = folder.name.rsplit("-", 1)[0].removeprefix(scope.prefix)
            # blocks in use: Kafka makes each index file 10 MiB long, sparse
            topics[topic] = topics.get(topic, 0) + sum(
                f.stat().st_blocks * 512 for f in folder.iterdir() if f.is_file()
            )
    memory = dict(rss_mib(platform))
    for node in cluster.members:
        if node.pid is not None:
            memory[f"Kafka node {node.node_id} (JVM)"] = status_kib(node.pid, "VmRSS") / 1024
    pg = postgres()
    memory["PostgreSQL, RSS summed"] = sum(status_kib(p, "VmRSS") for p in pg) / 1024
    memory["PostgreSQL, PSS summed"] = sum(pss_kib(p) for p in pg) / 1024
    return Sizes(schemas, topics, memory, events, rows)


def status_kib(pid: int, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: a shared page counted once over all the processes that map it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


# -- rebuild, verify, republish --------------------------------------------------------------------------------------


def service_settings(scope: Scope, dsn: str, name: str) -> dict[str, Any]:
    """unionctl's overrides for a service's code run in this process: its schema, topics, keys, Kafka sign-in."""
    module = importlib.import_module(f"services.{name}.service")
    fields = getattr(module, ops.SERVICES[name][1]).model_fields
    values = {
        "database_url": dsn,
        "db_schema": f"{scope.schemas}{name}",
        "topic_prefix": scope.prefix,
        "pii_master_key": scope.key,
        "blind_index_key": scope.key,
        "ballot_master_key": scope.key,
        **scope.broker.settings(name),
    }
    return {k: v for k, v in values.items() if k in fields}


@dataclass(frozen=True)
class Rate:
    entries: int  # events (or log entries) processed
    seconds: float
    per_member: float  # entries per member of this run
    problems: int = 0

    @property
    def rate(self) -> float:
        return self.entries / max(self.seconds, 1e-9)

    @property
    def projected(self) -> float:
        """Seconds at 16.6 million members."""
        return self.per_member * PROJECTED / max(self.rate, 1e-9)


async def rebuild(scope: Scope, dsn: str, service: str, projection: str, n: int) -> Rate:
    runtime = ops.load_service(service, **service_settings(scope, dsn, service)).runtime
    await runtime.start(background=False)
    try:
        start = time.perf_counter()
        replayed = int(await runtime.projections.rebuild(projection))
        return Rate(replayed, time.perf_counter() - start, replayed / n)
    finally:
        await runtime.stop()


async def verify(scope: Scope, dsn: str, services: Sequence[str], events: dict[str, int], n: int) -> Rate:
    problems, seconds = 0, 0.0
    for service in services:
        runtime = ops.load_service(service, **service_settings(scope, dsn, service)).runtime
        await runtime.start(background=False)
        try:
            start = time.perf_counter()
            problems += len(await runtime.store.verify())
            seconds += time.perf_counter() - start
        finally:
            await runtime.stop()
    total = sum(events[s] for s in services)
    return Rate(total, seconds, total / n, problems)


async def republish(dsn: str, scope: Scope, work: Path, n: int) -> Rate:
    """Membership's whole log into topics of a fresh prefix, by its relay in a process of its own."""
    fresh = Scope(scope.broker, f"{scope.tag}r", scope.key)
    await fresh.provision()
    schema = f"{scope.schemas}membership"
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    platform = fresh.platform(dsn, work, ["membership"], schemas=scope.schemas)
    try:
        head = int(await conn.fetchval("SELECT max(position) FROM events"))
        async with conn.transaction():
            events = await republish_from(conn, 1, "make scale: into a fresh topic prefix", forget_offsets=True)
        starting = asyncio.create_task(asyncio.to_thread(platform.start))
        await starting
        check = running(platform, starting)
        first: tuple[float, int] | None = None
        while True:
            position = int(await conn.fetchval("SELECT min(position) FROM relay_state"))
            now = time.perf_counter()
            if first is None and position > 0:
                first = (now, position)
            if position >= head:
                break
            check()
            await asyncio.sleep(0.1)
        assert first is not None
        sent = events - first[1]
        return Rate(sent, now - first[0], events / n)
    finally:
        await asyncio.to_thread(platform.stop)
        await conn.close()


# -- one N -----------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    n: int
    orgs: int
    load: Load
    activity: Activity
    reads: dict[str, Timed]
    sizes: Sizes
    rates: dict[str, Rate]
    flagship: int  # members of the enterprise whose reads are timed
    seconds: float = math.nan  # the whole run, the stack's start and stop included


async def measure(n: int, dsn: str, broker: Broker, cluster: KafkaCluster, work: Path) -> Run:
    rng = random.Random(n)
    scope = Scope(broker, "scale")
    await scope.provision()
    settings = scope.membership_settings(dsn)
    platform = scope.platform(dsn, work, SERVICES, DUES_REVIEW_INTERVAL=REVIEW_OFF)
    postgres = await postgres_pids(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        starting = asyncio.create_task(asyncio.to_thread(platform.start))
        await starting
        check = running(platform, starting)
        say(f"N = {n:,}: the services are up; the tree")
        tree = await build_tree(settings, n, rng)
        roster = scope.folder(work) / "roster.csv"
        write_roster(roster, tree, rng)
        say(f"{tree.orgs:,} organisations, a roster of {n:,} at {roster}; the first load")
        cpu = CpuShares(
            lambda: {
                **{s: [p.process.pid for p in platform.replicas_of(s) if p.process is not None] for s in SERVICES},
                "PostgreSQL": postgres(),
                "Kafka": broker.pids(),
            }
        )
        load = await first_load(conn, scope, settings, roster, n, check, cpu)
        say(f"loaded in {load.total:.0f} s (the import {load.imported:.0f} s); a year of activity")
        await conn.execute("CHECKPOINT")
        act = await activity(dsn, conn, scope, platform, tree, n, rng)
        say(f"activity done in {act.seconds:.0f} s: {act.done}; failed: {act.failed} {act.first_failure}")
        await conn.execute("CHECKPOINT")
        timings = await reads(conn, scope, platform, tree)
        measured = await sizes_of(conn, scope, cluster, platform, postgres)
    finally:
        await asyncio.to_thread(platform.stop)
        await conn.close()
    say("rebuilds, verification, republishing")
    rates = {
        "rebuild: membership's statistics (member_counts)": await rebuild(scope, dsn, "membership", "member_counts", n),
        "rebuild: servicecard's cards": await rebuild(scope, dsn, "servicecard", "cards", n),
        "verify: every store's hash chains": await verify(scope, dsn, SERVICES, measured.events, n),
        "republish: membership's log into fresh topics": await republish(dsn, scope, work, n),
    }
    return Run(n, tree.orgs, load, act, timings, measured, rates, tree.flagship.size)


def run_one(n: int, root: Path) -> Run:
    """A stack of its own for `n` members: PostgreSQL (durable) and one Kafka node, stopped afterwards."""
    started = time.perf_counter()
    folder = root / f"n{n}"
    folder.mkdir(parents=True)
    postgres = EmbeddedPostgres(folder / "pg", procs.free_port()).start(durable=True)
    try:
        cluster = start_kafka(folder / "kafka", KAFKA_NODES)
        try:
            broker = Broker(kafka_name(KAFKA_NODES), cluster)
            run = asyncio.run(measure(n, postgres.dsn, broker, cluster, folder))
        finally:
            cluster.stop()
    finally:
        postgres.stop()
    run.seconds = time.perf_counter() - started
    return run


# -- the table -------------------------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 1024:,.0f} KiB"


Cells = dict[str, str]


def cells(run: Run) -> tuple[Cells, dict[str, float]]:
    """One column: each row's text, and the reads' p99 (for the ratio)."""
    n = run.n
    col: Cells = {}
    p99: dict[str, float] = {}
    col["members, organisations, the enterprise's members"] = f"{n:,}, {run.orgs:,}, {run.flagship:,}"
    col["the whole run"] = duration(run.seconds)
    load = run.load
    col["**first load: import start → last follower done**"] = (
        f"**{duration(load.total)}** ({n / load.total:,.0f} members/s)"
    )
    col["import"] = f"{duration(load.imported)}, {n / load.imported:,.0f} rows/s"
    for name, stage in load.stages.items():
        first, last = stage.tenth_rates(n)
        label = "import (membership.members)" if name == "import" else f"{name} ({STAGES[name][1]})"
        done = f"done at {duration(stage.done or math.nan)}; " if name != "import" else ""
        col[f"rate of {label}: first → last tenth"] = f"{done}{first:,.0f} → {last:,.0f} /s"
    col["cores used during the load"] = ", ".join(f"{k} {v:.2f}" for k, v in load.cores.cores.items())
    act = run.activity
    col["activity (done; failed)"] = (
        ", ".join(f"{k} {v:,}" for k, v in act.done.items())
        + ("; FAILED " + ", ".join(f"{k} {v:,}" for k, v in act.failed.items()) if act.failed else "")
        + f"; {duration(act.seconds)}"
    )
    if act.review is not None:
        rate = act.review
        col["the month's dues review (every account): rate; at 16.6M members"] = (
            f"{rate.rate:,.0f} accounts/s ({rate.entries:,} in {duration(rate.seconds)}); → {duration(rate.projected)}"
        )
    for what, t in run.reads.items():
        label = f"read: {what} (p50 / p99 ms)"
        col[label] = f"{t.p50:.1f} / {t.p99:.1f}" + (
            f" ({t.errors} errors, the first: {t.first_error[:60]})" if t.errors else ""
        )
        p99[label] = t.p99
    for service, (size, tables) in run.sizes.schemas.items():
        biggest = ", ".join(f"{name} {mib(b)}" for name, b in tables)
        col[f"schema {service}: size (biggest tables)"] = (
            f"{mib(size)} ({biggest}); {run.sizes.events[service]:,} events"
        )
    for what, rows in run.sizes.rows.items():
        col[f"rows: {what}"] = f"{rows:,}"
    col["Kafka topics on disk"] = (
        ", ".join(f"{t} {mib(b)}" for t, b in sorted(run.sizes.topics.items(), key=lambda x: -x[1]) if b >= 64 * 1024)
        + " (the others less than 64 KiB each)"
    )
    for what, used in run.sizes.memory.items():
        col[f"memory: {what}"] = f"{used:,.0f} MiB"
    for what, rate in run.rates.items():
        problems = f", {rate.problems} problems" if what.startswith("verify") else ""
        col[f"{what}: rate; at 16.6M members"] = (
            f"{rate.rate:,.0f} events/s ({rate.entries:,} in {duration(rate.seconds)}{problems});"
            f" {rate.per_member:.1f} a member → {duration(rate.projected)}"
        )
    return col, p99


def table_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    columns = [cells(run) for run in runs]
    labels = list(dict.fromkeys(label for col, _ in columns for label in col))
    header = ["what", *(f"N = {run.n:,}" for run in runs)]
    if len(runs) > 1:
        header.append(f"p99 ×, N {runs[0].n:,} → {runs[-1].n:,}")
    body = []
    for label in labels:
        row = [label, *(col.get(label, "") for col, _ in columns)]
        if len(runs) > 1:
            first, last = columns[0][1].get(label), columns[-1][1].get(label)
            row.append(f"×{last / first:.2f}" if first and last and not math.isnan(first + last) else "")
        body.append(row)
    return header, body


def what_grows(runs: Sequence[Run]) -> str:
    """The paragraph under the table, from the figures."""
    last = runs[-1]
    schema_bytes = sum(size for size, _ in last.sizes.schemas.values())
    per_member = schema_bytes / last.n
    projected_db = per_member * PROJECTED / 2**30
    stages = {name: stage.tenth_rates(last.n) for name, stage in last.load.stages.items()}
    tables = [(f"{service}.{t}", b) for service, (_, ts) in last.sizes.schemas.items() for t, b in ts]
    biggest = sorted(tables, key=lambda x: -x[1])[:4]
    slowest = min(stages, key=lambda s: stages[s][1])
    text = (
        f"At N = {last.n:,} the five schemas hold {mib(schema_bytes)}, {per_member / 1024:.1f} KiB a member"
        f" (about {projected_db:,.0f} GiB at 16.6 million); the biggest tables: "
        + ", ".join(f"{t} {mib(b)}" for t, b in biggest)
        + ". "
        f"The slowest stage of the first load in its last tenth is {slowest}"
        f" ({stages[slowest][1]:,.0f} members/s; {stages[slowest][0]:,.0f} in the first tenth)."
    )
    if len(runs) > 1:
        first = runs[0]
        ratio = last.n / first.n
        read_ratios = {
            what: last.reads[what].p99 / first.reads[what].p99
            for what in last.reads
            if what in first.reads
            and first.reads[what].p99
            and not math.isnan(first.reads[what].p99 + last.reads[what].p99)
        }
        grows = sorted(read_ratios.items(), key=lambda x: -x[1])
        text += (
            f" From {first.n:,} to {last.n:,} members (×{ratio:.0f}) the first load took"
            f" ×{last.load.total / first.load.total:.1f} as long. Reads whose p99 grew most: "
            + ", ".join(f"{w} ×{r:.1f}" for w, r in grows[:4])
            + "; least: "
            + ", ".join(f"{w} ×{r:.1f}" for w, r in grows[-3:])
            + ". A read that grows with N is one whose cost follows the province rather than the office's share of it."
        )
    return text


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()


def markdown(runs: Sequence[Run], when: datetime, version: str) -> str:
    header, body = table_rows(runs)
    lines = [
        "# Scale",
        "",
        "The latest `make scale` (bench/scale.py; its docstring says what each row measures and the volumes it",
        "picks): each N on a stack of its own, everything on this machine: PostgreSQL 18 (embedded, fsync on), one",
        "Apache Kafka node (SASL/SCRAM, the ACLs of deploy/kafka/), the five services as processes.",
        "",
        f"- when: {when:%Y-%m-%d %H:%M} UTC, commit {version}",
        f"- machine: {machine()}",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    lines += ["", "**What grows.** " + what_grows(runs)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    words = [w for arg in args for w in arg.replace(",", " ").split()]
    try:
        ns = [int(w.replace("_", "")) for w in words] or list(DEFAULT_N)
    except ValueError:
        raise SystemExit(f"N is a number of members, or several: {' '.join(args)!r}") from None
    root = procs.run_dir() / "bench" / "scale"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.environ["AUTH_JWKS"] = str(Issuer.open(root / "auth").jwks_path)
    os.environ.setdefault("APPLICATION_RATE_PER_ADDRESS", "1000000/minute")  # every client is 127.0.0.1
    when, version = datetime.now(UTC), commit()
    runs = []
    for n in ns:
        say(f"[bold]N = {n:,}[/bold]")
        runs.append(run_one(n, root))
        say(f"N = {n:,} took {duration(runs[-1].seconds)}")
    header, body = table_rows(runs)
    table = Table(title=f"make scale: {when:%Y-%m-%d %H:%M} UTC, commit {version}")
    for column in header:
        table.add_column(column)
    for row in body:
        table.add_row(*row)
    Console().print(table)
    Console().print(machine())
    Console().print(what_grows(runs))
    (procs.ROOT_DIR / "docs").mkdir(exist_ok=True)
    (procs.ROOT_DIR / "docs" / "scale.md").write_text(markdown(runs, when, version), encoding="utf-8")


if __name__ == "__main__":
    main()
