"""The read models behind a union office's statistics and search (issue 28), against the plain answer.

Random small worlds: a county, its townships, the villages and enterprises below them; members join, move between
branches, are suspended and reinstated, retained and restored, lapse, are terminated and erased, over several days
recorded in the past. Every organisation's statistics (of itself and of its subtree, now and at the end of each day)
must be what a plain count over the members' event history gives, and a rebuild of the counters from the log must
give the same counters.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

import shared.store
from services.membership import domain, finding, retention
from services.membership.events import MemberJoined, OrganizationRegistered
from services.membership.handlers import org_stream
from shared.store import Metadata, Stream
from shared.workdays import CST
from tests.integration.conftest import ServiceUnderTest
from tests.support import data

META = Metadata(actor="test")
STATUSES = [s.value for s in domain.MemberStatus]
HOUSEHOLDS = [h.value for h in domain.HouseholdType]
EMPLOYMENTS = [t.value for t in domain.EmploymentType]


class StoreClock:
    """The time the event store records (`recorded_at`), set by the test: the projections see the days it names."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        class MovedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return clock.at if clock.at is not None else datetime.now(tz)

        monkeypatch.setattr(shared.store, "datetime", MovedDatetime)


@pytest.fixture
def store_clock(monkeypatch: pytest.MonkeyPatch) -> StoreClock:
    clock = StoreClock()
    clock.install(monkeypatch)
    return clock


@dataclass
class World:
    m: ServiceUnderTest
    rng: random.Random
    parent: dict[str, str | None] = field(default_factory=dict)
    holding: list[str] = field(default_factory=list)  # organisations that accept members
    members: list[str] = field(default_factory=list)

    def subtree(self, top: str) -> set[str]:
        def under(org: str) -> bool:
            at: str | None = org
            while at is not None:
                if at == top:
                    return True
                at = self.parent[at]
            return False

        return {o for o in self.parent if under(o)}


async def make_org(w: World, type_: str, parent: str | None, name: str, **extra: object) -> str:
    body = {"name": name, "type": type_, "region_code": "310115", "parent_id": parent, **extra}
    r = await w.m.post("/organizations", body)
    assert r.status_code == 201, r.text
    org_id = str(r.json()["org_id"])
    w.parent[org_id] = parent
    if domain.accepts_members(domain.OrgType(type_)):
        w.holding.append(org_id)
    return org_id


async def build_tree(w: World) -> str:
    county = await make_org(w, "county", None, "浦东新区总工会")
    for t in range(2):
        township = await make_org(w, "township", county, f"第{t}镇总工会")
        await make_org(w, "village", township, f"第{t}村工会")
        await make_org(w, "enterprise", township, f"第{t}企业工会", credit_code=data.credit_code())
    return county


async def join(w: World) -> None:
    body = data.application(
        w.rng.choice(w.holding),
        household_type=w.rng.choice(HOUSEHOLDS),
        employment_type=w.rng.choice(EMPLOYMENTS),
    )
    r = await w.m.post("/applications", body)
    assert r.status_code == 201, r.text
    r = await w.m.post(f"/applications/{r.json()['application_id']}/approve", {"reviewer": "staff"})
    assert r.status_code == 200, r.text
    w.members.append(str(r.json()["member_id"]))


async def member(w: World, member_id: str) -> domain.Member:
    async with w.m.service.pool.acquire() as conn:
        _, state = await w.m.service.membership.member(conn, member_id)
    assert isinstance(state, domain.Member)
    return state


ALLOWED = {  # what may happen to a member in each status (domain.py)
    "active": ["transfer", "suspend", "terminate", "retain", "lapse"],
    "suspended": ["transfer", "reinstate", "terminate", "lapse"],
    "retained": ["transfer", "restore", "terminate"],
    "terminated": ["erase"],
    "lapsed": ["erase"],
}


async def act(w: World, county: str) -> None:
    """One thing that happens to a random member, of those their status allows."""
    member_id = w.rng.choice(w.members)
    state = await member(w, member_id)
    if state.erased:
        return
    what = w.rng.choice(ALLOWED[state.status])
    service = w.m.service
    if what == "transfer":
        async with service.pool.acquire() as conn, conn.transaction():
            await service.membership.change_organization(conn, member_id, w.rng.choice(w.holding), None, META)
    elif what == "lapse":
        async with service.pool.acquire() as conn, conn.transaction():
            await retention.lapse(service.membership, conn, member_id, None, "six months unpaid", "staff", META)
    elif what == "erase":
        assert (await w.m.http.delete(f"/members/{member_id}/personal-data")).status_code == 200
    else:
        # a closed unit's members held by the county (a county holds no members of its own: still counted there)
        retain = w.rng.choice([{"reason": "retired"}, {"reason": "unit_closed", "held_by_org_id": county}])
        r = await w.m.post(f"/members/{member_id}/{what}", retain if what == "retain" else {"reason": "test"})
        assert r.status_code == 200, r.text


# --- the plain answer: the members' event histories, folded up to a time, counted ---------------------------------


@dataclass(frozen=True)
class Counted:
    org_id: str
    status: str
    household_type: str
    employment_type: str


async def members_at(w: World, at: datetime | None) -> list[Counted]:
    found = []
    async with w.m.service.pool.acquire() as conn:
        for member_id in w.members:
            stream = await w.m.service.store.load(conn, f"member-{member_id}")
            past = [e.event for e in stream.events if e.event is not None and (at is None or e.recorded_at <= at)]
            state = domain.fold(past)
            if not isinstance(state, domain.Member):
                continue
            joined = next(e for e in past if isinstance(e, MemberJoined))
            found.append(Counted(str(state.org_id), state.status, joined.household_type, joined.employment_type))
    return found


def plain_stats(w: World, members: list[Counted], org_id: str, subtree: bool) -> dict[str, Any]:
    orgs = w.subtree(org_id) if subtree else {org_id}
    held = [c for c in members if c.org_id in orgs]
    active = [c for c in held if c.status == "active"]
    by_status = Counter(c.status for c in held)
    by_household = Counter(c.household_type for c in active)
    by_employment = Counter(c.employment_type for c in active)
    return {
        "total": len(held),
        "by_status": {s: by_status[s] for s in STATUSES},
        "by_household_type": {h: by_household[h] for h in HOUSEHOLDS},
        "by_employment_type": {t: by_employment[t] for t in EMPLOYMENTS},
    }


OLD_QUERY = """
SELECT m.status, m.household_type, m.employment_type, count(*) AS n
FROM members m JOIN organizations o ON o.org_id = m.org_id
WHERE (CASE WHEN $2 THEN o.path LIKE $1 ELSE o.org_id = $3::uuid END)
GROUP BY m.status, m.household_type, m.employment_type
"""


async def query_over_members(w: World, org_id: str, subtree: bool) -> dict[str, Any]:
    """The query the statistics were before issue 28: over the members table."""
    async with w.m.service.pool.acquire() as conn:
        path = await conn.fetchval("SELECT path FROM organizations WHERE org_id = $1::uuid", org_id)
        rows = await conn.fetch(OLD_QUERY, path + "%", subtree, org_id)
    by_status = dict.fromkeys(STATUSES, 0)
    by_household = dict.fromkeys(HOUSEHOLDS, 0)
    by_employment = dict.fromkeys(EMPLOYMENTS, 0)
    for r in rows:
        by_status[r["status"]] += r["n"]
        if r["status"] == "active":
            by_household[r["household_type"]] += r["n"]
            by_employment[r["employment_type"]] += r["n"]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_household_type": by_household,
        "by_employment_type": by_employment,
    }


async def stats(w: World, org_id: str, subtree: bool, as_of: date | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"subtree": subtree}
    if as_of is not None:
        params["as_of"] = as_of.isoformat()
    r = await w.m.get(f"/organizations/{org_id}/stats", params=params)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["org_id"] == org_id
    assert answer["subtree"] is subtree
    assert answer.get("as_of") == (as_of.isoformat() if as_of else None)
    return {k: answer[k] for k in ("total", "by_status", "by_household_type", "by_employment_type")}


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), CST)


def moments(day: date, n: int, rng: random.Random) -> Iterator[datetime]:
    """`n` times in a day (China Standard Time), in order, the first just after midnight and the last just before
    the next: a day counted in UTC would put them on the wrong day."""
    minutes = sorted([5, 24 * 60 - 5, *(rng.randrange(10, 24 * 60 - 10) for _ in range(max(n - 2, 0)))])[:n]
    for minute in minutes:
        yield datetime.combine(day, time(0), CST) + timedelta(minutes=minute)


async def counters(w: World) -> tuple[list[Any], list[Any]]:
    """The counters now, and each key's count through time as the days on which it changed, the slots summed (a
    replay writes all into one slot where the live writes used several; a key that came and went within one batch
    of a replay leaves no row where the live writes left a 0: the same counts)."""
    async with w.m.service.pool.acquire() as conn:
        now = await conn.fetch(
            "SELECT org_id, subtree, status, household_type, employment_type, sum(n)::bigint FROM member_counts"
            " GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5"
        )
        rows = await conn.fetch(
            "SELECT org_id, subtree, status, household_type, employment_type, slot, day, n FROM member_count_history"
        )
    slots: dict[tuple[Any, ...], dict[int, dict[date, int]]] = {}
    for r in rows:
        slots.setdefault(tuple(r)[:5], {}).setdefault(r["slot"], {})[r["day"]] = r["n"]
    history = []
    for key, by_slot in sorted(slots.items()):
        last = 0
        for day in sorted({d for days in by_slot.values() for d in days}):
            n = sum(days[max(d for d in days if d <= day)] for days in by_slot.values() if min(days) <= day)
            if n != last:
                history.append((*key, day, n))
            last = n
    return [tuple(r) for r in now], history


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counters_agree_with_the_members_now_as_of_each_day_and_after_a_rebuild(
    membership: ServiceUnderTest, store_clock: StoreClock, seed: int
) -> None:
    w = World(membership, random.Random(seed))
    first = datetime.now(CST).date() - timedelta(days=10)
    days = [first + timedelta(days=i) for i in range(5)]
    store_clock.at = datetime.combine(first, time(0), CST) + timedelta(minutes=1)
    county = await build_tree(w)
    for i, day in enumerate(days):
        joins = 30 if i == 0 else 8
        for at in moments(day, joins + 30, w.rng):
            store_clock.at = at.astimezone(UTC)
            if joins:
                await join(w)
                joins -= 1
            else:
                await act(w, county)
    store_clock.at = None  # and today: a few more, at the real time
    for _ in range(10):
        await act(w, county)

    async with membership.service.pool.acquire() as conn:
        happened = {r[0] for r in await conn.fetch("SELECT DISTINCT event_type FROM events")}
    assert happened >= {
        "MemberOrganizationChanged",
        "MemberSuspended",
        "MemberReinstated",
        "MemberTerminated",
        "MembershipRetained",
        "MembershipRestored",
        "MembershipLapsed",
        "PersonalDataErased",
    }, f"seed {seed}: a world where too little happened to tell anything: {happened}"
    now = await members_at(w, None)
    for org_id in w.parent:
        for subtree in (True, False):
            expected = plain_stats(w, now, org_id, subtree)
            assert await stats(w, org_id, subtree) == expected, (seed, org_id, subtree)
            assert await query_over_members(w, org_id, subtree) == expected, (seed, org_id, subtree)
        seen = (await w.m.get(f"/organizations/{org_id}")).json()  # the organisation's own page: its active members
        assert seen["member_count"] == plain_stats(w, now, org_id, False)["by_status"]["active"], (seed, org_id)
        assert seen["subtree_member_count"] == plain_stats(w, now, org_id, True)["by_status"]["active"], (seed, org_id)
    for day in [first - timedelta(days=1), *days, datetime.now(CST).date()]:
        then = await members_at(w, end_of(day))
        for org_id in w.parent:
            for subtree in (True, False):
                expected = plain_stats(w, then, org_id, subtree)
                assert await stats(w, org_id, subtree, day) == expected, (seed, day, org_id, subtree)

    before = await counters(w)
    replayed = await membership.service.runtime.projections.rebuild("member_counts")
    assert replayed > 0
    assert await counters(w) == before


async def test_an_erasure_changes_no_count_and_a_transfer_moves_one_between_branches(
    membership: ServiceUnderTest,
) -> None:
    w = World(membership, random.Random(7))
    county = await build_tree(w)
    for _ in range(6):
        await join(w)
    mover = w.members[0]
    source = str((await member(w, mover)).org_id)
    target = next(o for o in w.holding if o != source)
    before_source, before_target = await stats(w, source, False), await stats(w, target, False)
    async with membership.service.pool.acquire() as conn, conn.transaction():
        await membership.service.membership.change_organization(conn, mover, target, None, META)
    assert (await stats(w, source, False))["by_status"]["active"] == before_source["by_status"]["active"] - 1
    assert (await stats(w, target, False))["by_status"]["active"] == before_target["by_status"]["active"] + 1
    assert (await stats(w, county, True))["total"] == 6

    leaver = w.members[1]
    assert (await membership.post(f"/members/{leaver}/terminate", {"reason": "withdrew"})).status_code == 200
    counted = await stats(w, county, True)
    assert counted["by_status"]["terminated"] == 1
    assert (await membership.http.delete(f"/members/{leaver}/personal-data")).status_code == 200
    assert await stats(w, county, True) == counted


async def test_as_of_is_a_day(membership: ServiceUnderTest) -> None:
    w = World(membership, random.Random(0))
    county = await build_tree(w)
    for bad in ("2026-02-30", "2026-13-01", "0000-01-01", "yesterday", "2026-01-01T00:00:00Z"):
        r = await membership.get(f"/organizations/{county}/stats", params={"as_of": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "query.as_of"
    r = await membership.get(f"/organizations/{county}/stats", params={"as_of": "2001-01-01"})
    assert r.status_code == 200
    assert r.json()["total"] == 0


# --- search by a part of the name -------------------------------------------------------------------------------

NAMES = [
    "浦东新区总工会",
    "张江镇总工会",
    "张江高科技园区联合工会",
    "江苏路街道工会",
    "金桥镇总工会",
    "Zhangjiang Hi-Tech Union",
    "Pudong 100% Union",
    "快递行业联合会",
    "上海张江集团工会",
]


async def test_search_by_a_part_of_a_name_finds_what_a_scan_finds(membership: ServiceUnderTest) -> None:
    w = World(membership, random.Random(0))
    county = await make_org(w, "county", None, NAMES[0])
    ids = {NAMES[0]: county}
    for name in NAMES[1:]:
        ids[name] = await make_org(w, "federation", county, name, subtype="regional")
    for part in (
        "张",
        "张江",
        "张江镇",
        "江",
        "工会",
        "总工会",
        "高科技园",
        "zhang",
        "UNION",
        "100%",
        "0%",
        "_",
        "镇工",
    ):
        r = await membership.get("/organizations/search", params={"q": part, "limit": 200})
        assert r.status_code == 200, r.text
        found = {i["name"] for i in r.json()["items"]}
        assert found == {n for n in NAMES if part.casefold() in n.casefold()}, part


class Explaining:
    """A connection that has the plan of each statement explained before running it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.plans.append("\n".join(r[0] for r in await self.conn.fetch("EXPLAIN " + sql, *args)))
        rows: list[Any] = await self.conn.fetch(sql, *args)
        return rows


async def test_the_search_uses_the_name_index(membership: ServiceUnderTest) -> None:
    """Among 3,000 organisations the search's own statement finds a part of a name through organizations_name_grams,
    not by reading every name."""
    rng = random.Random(0)
    common = "中华人民共和国上海北京江苏浙江广东建设交通电力机械纺织化工食品物流医药教育银行保险商贸服务科技信息"
    registered = [
        OrganizationRegistered(
            org_id=uuid.uuid4(),
            name="".join(rng.choice(common) for _ in range(4)) + "工会",
            type="federation",
            subtype="industry",
            region_code="310115",
            accepts_members=True,
        )
        for _ in range(3000)
    ]
    registered += [
        OrganizationRegistered(
            org_id=uuid.uuid4(),
            name=name,
            type="federation",
            subtype="industry",
            region_code="310115",
            accepts_members=True,
        )
        for name in ("张江镇总工会", "张江高科技园区联合工会")
    ]
    service = membership.service
    async with service.pool.acquire() as conn:
        async with conn.transaction():
            await service.store.append_streams(conn, [(Stream(org_stream(e.org_id)), [e]) for e in registered], META)
        await conn.execute("ANALYZE organizations")
        explaining = Explaining(conn)
        found = await finding.search(
            explaining, q="张江", region_code=None, industry=None, org_type=None, accepting=None, limit=50, cursor=None
        )
    assert {i["name"] for i in found["items"]} == {"张江镇总工会", "张江高科技园区联合工会"}
    assert "Bitmap Index Scan on organizations_name_grams" in explaining.plans[0], explaining.plans[0]
