"""Who may call what: every endpoint of the five services, for every kind of caller, from one table.

Each row of TABLE is one endpoint and what each of eight callers gets back:

    none     no Authorization header
    self     the member the resource belongs to
    other    a member of the sibling organisation B
    staff    staff of "the organisation" (A, a township union)
    sibling  staff of B, A's sibling under the same county federation P
    parent   staff of P
    admin    an administrator
    system   a regional system's integration with the default scopes (read only: no redemptions:write)

written as `2` (any 2xx), `4` (401) or `3` (403), in that order. Where nothing belongs to a member (an
organisation, the catalogue), `self` is the member of A the world's shared resources belong to. A row that
changes state has a setup that gives every caller but `none` a fresh resource of its own, so every attempt
starts from the same state; `none` is sent to ids nobody holds instead: it must be refused before anything is
looked up, and were it not, it would get a 404 rather than change the world the other rows use.
The services run as processes (tests/e2e/conftest.py); waiting for other services to catch up reads their
tables directly, but every assertion is about HTTP status codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import tomllib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from stdnum.luhn import calc_check_digit as luhn_check_digit

from devstack.platform import Platform
from services.dues import domain
from services.dues.service import DuesService, DuesSettings
from shared.store import Metadata
from tests.conftest import Stack
from tests.support import auth, data
from tests.support.waiting import eventually

ROLES = ("none", "self", "other", "staff", "sibling", "parent", "admin", "system")
CODES = {"2": "2xx", "4": "401", "3": "403"}
NOT_ENDPOINTS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

Ctx = dict[str, str]
Setup = Callable[["World", str], Awaitable[Ctx]]
Body = Callable[["World", Ctx], dict[str, Any]]


def name_of(role: str) -> str:
    """The name in each role's token: what a command records as who acted (`by`, `requested_by`)."""
    return "regional-reader" if role == "system" else f"matrix-{role}"


@dataclass
class World:
    """Organisations P > A, B, D; member N in B; a pool of members of A every service knows; shared resources."""

    http: dict[str, httpx.AsyncClient]  # no default Authorization: each request says who it is
    db: asyncpg.Pool
    schema_prefix: str
    orgs: dict[str, str] = field(default_factory=dict)  # P, A, B, D
    other: str = ""  # N, in B
    pool: list[str] = field(default_factory=list)  # members of A known to every service, each used once
    cards: dict[str, str] = field(default_factory=dict)  # member -> current card number
    base: Ctx = field(default_factory=dict)  # path parameters -> the world's shared resources
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(12))
    dues_service: DuesService | None = (
        None  # the dues service's store, opened here on its schema: six months pass only in its log
    )

    async def open_case(self, member: str) -> str:
        """A six-month case for the member: their account reviewed as if opened ten months ago (no endpoint makes
        time pass; tests/integration/test_dues.py does the same in process)."""
        today = datetime.now(UTC).date()
        past = (today.replace(day=1) - timedelta(days=280)).replace(day=1)
        case_id = uuid.uuid4()
        service = self.dues_service
        assert service is not None
        async with service.pool.acquire() as conn:
            async with conn.transaction():
                stream, state = await service.dues.account(conn, uuid.UUID(member))
                assert state is not None, f"no dues account for {member}"
                reopened = dataclasses.replace(state, opened_on=past)
                events = domain.review(reopened, [], today - timedelta(days=45), case_id)
                assert any(e.event_name() == "ArrearsCaseOpened" for e in events), events
                await service.store.append(conn, stream, events, Metadata(actor="matrix"))
            await service.store.notify(conn)
        return str(case_id)

    def headers(self, role: str, ctx: Mapping[str, str], org: str) -> dict[str, str]:
        """`org` is "the organisation" of the row: whose staff the `staff` role is."""
        staff_of = {"staff": org, "sibling": "B", "parent": "P"}
        if role == "none":
            return {}
        if role in staff_of:
            return auth.bearer("staff", org_id=self.orgs[staff_of[role]], name=name_of(role))
        if role in {"self", "other"}:
            member = ctx["member_id"] if role == "self" else self.other
            return auth.bearer("member", member_id=member, name=name_of(role))
        assert role in {"admin", "system"}, role
        return auth.bearer(role, name=name_of(role))  # system: DEFAULT_SYSTEM_SCOPE, no redemptions:write

    async def call(
        self, service: str, method: str, path: str, body: dict[str, Any] | None = None, as_: str = "admin", **ids: str
    ) -> dict[str, Any]:
        """A setup step: must succeed."""
        async with self.gate:
            r = await self.http[service].request(method, path, json=body, headers=self.headers(as_, ids, "A"))
        assert r.is_success, f"setup {method} {path}: {r.status_code} {r.text}"
        return dict(r.json())

    async def org(self, type_: str, parent: str | None) -> str:
        body = {"name": f"matrix {type_}", "type": type_, "region_code": "310115", "parent_id": parent}
        return str((await self.call("membership", "POST", "/organizations", body))["org_id"])

    async def apply(self, org_id: str) -> str:
        return str((await self.call("membership", "POST", "/applications", data.application(org_id)))["application_id"])

    async def join(self, org_id: str) -> str:
        application = await self.apply(org_id)
        return str((await self.call("membership", "POST", f"/applications/{application}/approve", {}))["member_id"])

    def fresh(self) -> str:
        assert self.pool, "the pool of members ran out: POOL_SIZE counts the rows that take from it"
        return self.pool.pop()

    def table(self, service: str, name: str) -> str:
        return f'"{self.schema_prefix}{service}".{name}'

    async def count(self, service: str, table: str, ids: Iterable[str], where: str = "") -> int:
        key = "org_id" if table == "directory_orgs" else "member_id"
        found = await self.db.fetchval(
            f"SELECT count(*) FROM {self.table(service, table)} WHERE {key} = ANY($1::uuid[]) {where}", list(ids)
        )
        return int(found)

    async def known_everywhere(self, members: list[str], orgs: list[str]) -> None:
        """Until transfer, servicecard, feedback and dues have heard of these members and organisations."""
        checks = [
            *((s, "directory_orgs", orgs, "") for s in ("membership", "transfer", "servicecard", "feedback", "dues")),
            *((s, "directory_members", members, "AND status = 'active'") for s in ("transfer", "feedback")),
            ("servicecard", "cards", members, "AND replaced_by IS NULL"),
            ("dues", "dues_accounts", members, "AND status = 'active'"),
        ]

        async def caught_up() -> bool:
            counts = [await self.count(s, t, ids, where) for s, t, ids, where in checks]
            return counts == [len(ids) for _, _, ids, _ in checks]

        await eventually(caught_up, timeout=60)
        rows = await self.db.fetch(
            f"SELECT member_id::text, card_no FROM {self.table('servicecard', 'cards')} "
            "WHERE member_id = ANY($1::uuid[]) AND replaced_by IS NULL",
            members,
        )
        self.cards.update({r["member_id"]: r["card_no"] for r in rows})


# --- bodies ---------------------------------------------------------------------------------------------


def campaign_body(w: World, min_turnout: int = 3) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": "matrix evaluation",
        "subject_type": "organization",
        "subject_id": w.orgs["A"],
        "electorate_org_id": w.orgs["A"],
        "electorate": "members",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat(),
        "min_turnout": min_turnout,
    }


def item_body(w: World) -> dict[str, Any]:
    return {
        "name": "法律咨询",
        "category": "legal_aid",
        "provider": "区法律援助中心",
        "standard": "每次一小时",
        "org_id": w.orgs["A"],
    }  # no quota_per_year: redeeming it again and again changes nothing a later attempt depends on


def reason(text: str) -> Body:
    return lambda _w, _c: {"reason": text}


def empty(_w: World, _c: Ctx) -> dict[str, Any]:
    return {}


def notice_2027(_w: World, _c: Ctx) -> dict[str, Any]:
    """The 2027 notice fixture, as `unionctl calendar load` sends it (loading it again changes nothing)."""
    return json.loads(json.dumps(tomllib.loads((data.NOTICES / "2027.toml").read_text("utf-8")), default=str))


def new_org(w: World, _c: Ctx) -> dict[str, Any]:
    return {"name": "matrix village", "type": "village", "region_code": "310115", "parent_id": w.orgs["A"]}


def new_application(w: World, _c: Ctx) -> dict[str, Any]:
    return data.application(w.orgs["A"])


def transfer_to_d(w: World, c: Ctx) -> dict[str, Any]:
    return {"member_id": c["member_id"], "to_org_id": w.orgs["D"], "reason": "new job"}


def bulk_to_d(w: World, c: Ctx) -> dict[str, Any]:
    return {"member_ids": [c["member_id"]], "to_org_id": w.orgs["D"], "reason": "unit union founded"}


def new_item(w: World, _c: Ctx) -> dict[str, Any]:
    return item_body(w)


def redeem(_w: World, c: Ctx) -> dict[str, Any]:
    return {"item_id": c["item_id"]}


def rating(_w: World, c: Ctx) -> dict[str, Any]:
    return {"redemption_id": c["redemption_id"], "member_id": c["member_id"], "score": 4}


def new_campaign(w: World, _c: Ctx) -> dict[str, Any]:
    return campaign_body(w)


def ballot(_w: World, c: Ctx) -> dict[str, Any]:
    return {"voter_id": c["member_id"], "score": 4}


def new_request(_w: World, c: Ctx) -> dict[str, Any]:
    return {"member_id": c["member_id"], "category": "wages", "text": "工资拖欠"}


def lookup(w: World, _c: Ctx) -> dict[str, Any]:
    return {"member_no": w.base["member_no"]}


def answer(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"text": "已转交"}


def an_hour_from_now() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def election_body(w: World, body: str = "chair") -> dict[str, Any]:
    return {"org_id": w.orgs["A"], "title": "matrix election", "body": body, "seats": 1}


def new_election(w: World, _c: Ctx) -> dict[str, Any]:
    return election_body(w)


def candidate(w: World, _c: Ctx) -> dict[str, Any]:
    return {"member_id": w.base["member_id"]}


def election_round(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"closes_at": an_hour_from_now()}


def election_ballot(_w: World, c: Ctx) -> dict[str, Any]:
    return {"voter_id": c["member_id"], "approve": []}


def this_month() -> str:
    return f"{datetime.now(UTC):%Y-%m}"


def future_policy(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"effective_from": "2099-01", "citation": "matrix"}  # far ahead: no month anyone is assessed for


def wage_base(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"monthly_base": "4000.00", "from_month": this_month()}


def dues_payment(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"month": this_month(), "amount": "10.00"}


def exemption(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"from_month": this_month(), "to_month": this_month(), "reason": "sick leave"}


def education(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"contacted_on": str(datetime.now(UTC).date() - timedelta(days=31)), "note": "visited at home"}


def lapse(_w: World, _c: Ctx) -> dict[str, Any]:
    return {"reason": "six months unpaid", "no_part_in_union_life": True}


def remittance(_w: World, _c: Ctx) -> dict[str, Any]:
    """A line naming nobody: reported unmatched and kept with the remittance, nobody's ledger changes."""
    return {"month": this_month(), "file_name": "matrix.csv", "lines": [{"member_no": "MATRIX-0", "amount": "1.00"}]}


def allocation_body(w: World, mode: str = "draw", closes: str | None = None) -> dict[str, Any]:
    return {
        "item_id": w.base["item_id"],
        "org_id": w.orgs["A"],
        "title": "matrix places",
        "mode": mode,
        "places": 1000,
        "entries_close_at": closes or an_hour_from_now(),
    }


def new_allocation(w: World, _c: Ctx) -> dict[str, Any]:
    return allocation_body(w)


def entry(_w: World, c: Ctx) -> dict[str, Any]:
    return {"member_id": c["member_id"]}


# --- per-cell setups: a fresh resource for one caller's attempt ------------------------------------------


async def org_under_a(w: World, _role: str) -> Ctx:
    return {"org_id": await w.org("village", w.orgs["A"])}


async def application_in_a(w: World, _role: str) -> Ctx:
    return {"application_id": await w.apply(w.orgs["A"])}


async def member_of_a(w: World, _role: str) -> Ctx:
    return {"member_id": await w.join(w.orgs["A"])}


async def suspended_member(w: World, _role: str) -> Ctx:
    member = await w.join(w.orgs["A"])
    await w.call("membership", "POST", f"/members/{member}/suspend", {"reason": "arrears"})
    return {"member_id": member}


async def retained_member(w: World, _role: str) -> Ctx:
    member = await w.join(w.orgs["A"])
    await w.call("membership", "POST", f"/members/{member}/retain", {"reason": "retired"})
    return {"member_id": member}


async def terminated_member(w: World, _role: str) -> Ctx:
    member = await w.join(w.orgs["A"])
    await w.call("membership", "POST", f"/members/{member}/terminate", {"reason": "withdrawal"})
    return {"member_id": member}


async def pool_member(w: World, _role: str) -> Ctx:
    return {"member_id": w.fresh()}


async def requested_transfer(w: World, role: str, as_: str = "admin") -> Ctx:
    """A transfer of a fresh member from A to D."""
    member = w.fresh()
    body = {"member_id": member, "to_org_id": w.orgs["D"], "reason": "new job", "requested_by": name_of(role)}
    transfer = await w.call("transfer", "POST", "/transfers", body, as_=as_, member_id=member)
    return {"member_id": member, "transfer_id": str(transfer["transfer_id"])}


async def own_request(w: World, role: str) -> Ctx:
    """A transfer the caller asked for, when they may ask (else an admin did): only the requester cancels."""
    return await requested_transfer(w, role, as_=role if role in {"self", "staff", "parent", "admin"} else "admin")


async def released_transfer(w: World, role: str) -> Ctx:
    ctx = await requested_transfer(w, role)
    await w.call("transfer", "POST", f"/transfers/{ctx['transfer_id']}/release", {})
    return ctx


async def fresh_card(w: World, _role: str) -> Ctx:
    member = w.fresh()
    return {"member_id": member, "card_no": w.cards[member]}


async def item_of_a(w: World, _role: str) -> Ctx:
    return {"item_id": str((await w.call("servicecard", "POST", "/catalog/items", item_body(w)))["item_id"])}


async def redemption_of_self(w: World, _role: str) -> Ctx:
    redeemed = await w.call("servicecard", "POST", f"/cards/{w.base['card_no']}/redemptions", redeem(w, w.base))
    return {"redemption_id": str(redeemed["redemption_id"])}


async def rateable_redemption(w: World, role: str) -> Ctx:
    ctx = await redemption_of_self(w, role)

    async def feedback_knows() -> bool:
        found = await w.db.fetchval(
            f"SELECT 1 FROM {w.table('feedback', 'redemptions')} WHERE redemption_id = $1::uuid", ctx["redemption_id"]
        )
        return found is not None

    await eventually(feedback_knows)
    return ctx


async def campaign_over_a(w: World, _role: str) -> Ctx:
    return {"campaign_id": str((await w.call("feedback", "POST", "/campaigns", campaign_body(w)))["campaign_id"])}


async def request_of_self(w: World, _role: str) -> Ctx:
    raised = await w.call("feedback", "POST", "/requests", new_request(w, w.base), as_="self", **w.base)
    return {"request_id": str(raised["request_id"])}


async def election_over_a(w: World, _role: str, stage: str = "nominating", member: str | None = None) -> Ctx:
    """A chair's election of A, up to `stage`: nominating, nominated (one candidate), confirmed or voting."""
    election = str((await w.call(F, "POST", "/elections", election_body(w)))["election_id"])
    if stage != "nominating":
        await w.call(F, "POST", f"/elections/{election}/candidates", {"member_id": w.base["member_id"]})
    if stage in {"confirmed", "voting"}:
        await w.call(F, "POST", f"/elections/{election}/candidates/confirm")
    if stage == "voting":
        await w.call(F, "POST", f"/elections/{election}/rounds", {"closes_at": an_hour_from_now()})
    return {"election_id": election} | ({"member_id": member} if member else {})


async def nominated_election(w: World, role: str) -> Ctx:
    return await election_over_a(w, role, "nominated")


async def confirmed_election(w: World, role: str) -> Ctx:
    return await election_over_a(w, role, "confirmed")


async def voting_election(w: World, role: str) -> Ctx:
    return await election_over_a(w, role, "voting")


async def voter_in_election(w: World, role: str) -> Ctx:
    """A fresh member of A, in the electorate of an election whose vote is open."""
    return await election_over_a(w, role, "voting", member=w.fresh())


async def entitlement_of_a_member(w: World, _role: str, member: str | None = None) -> Ctx:
    member = member or w.fresh()
    allocation = str((await w.call(C, "POST", "/allocations", allocation_body(w, "first_come")))["allocation_id"])
    entered = await w.call(
        C, "POST", f"/allocations/{allocation}/entries", {"member_id": member}, as_="self", member_id=member
    )
    return {"member_id": member, "entitlement_id": str(entered["entitlement_id"])}


async def closed_draw(w: World, _role: str) -> Ctx:
    """A draw whose entries closed a moment ago."""
    closes = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    allocation = await w.call(C, "POST", "/allocations", allocation_body(w, "draw", closes))
    await asyncio.sleep(1.5)
    return {"allocation_id": str(allocation["allocation_id"])}


async def member_with_case(w: World, _role: str) -> Ctx:
    member = w.fresh()
    return {"member_id": member, "case_id": await w.open_case(member)}


async def educated_case(w: World, role: str) -> Ctx:
    """A case whose education was recorded 31 days ago: the 30-day grace period is over, staff may decide."""
    ctx = await member_with_case(w, role)
    await w.call("dues", "POST", f"/dues/cases/{ctx['case_id']}/education", education(w, ctx))
    return ctx


POOLED: set[Setup] = {
    pool_member,
    member_with_case,
    educated_case,
    requested_transfer,
    own_request,
    released_transfer,
    fresh_card,
    voter_in_election,
    entitlement_of_a_member,
}
WORLD_MEMBERS = 7  # self, the bulk batch's member, three voters, a holder of an entitlement, one in arrears


# --- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    path: str  # as the service's OpenAPI names it; parameters filled from the world, then the setup
    expect: str  # none self other staff sibling parent admin system: 2 = 2xx, 4 = 401, 3 = 403
    setup: Setup | None = None
    body: Body | None = None
    query: tuple[str, ...] = ()  # query parameters, filled like path parameters
    use: Mapping[str, str] = field(default_factory=dict)  # path parameter -> another of the world's resources
    org: str = "A"  # "the organisation": whose staff `staff` is

    def __post_init__(self) -> None:
        assert len(self.expect.split()) == len(ROLES), self
        assert set(self.expect.split()) <= set(CODES), self

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def expected(self) -> list[str]:
        return self.expect.split()


M, T, C, F, D = "membership", "transfer", "servicecard", "feedback", "dues"

TABLE = [
    # service method path                                    none self other staff sibl parent admin system
    Row(M, "POST", "/organizations",                            "4 3 3 2 3 2 2 3", body=new_org),
    Row(M, "GET", "/organizations/{org_id}",                    "4 2 2 2 2 2 2 2"),
    Row(M, "GET", "/organizations/{org_id}/members",            "4 3 3 2 3 2 2 2"),
    Row(M, "GET", "/organizations/{org_id}/stats",              "4 3 3 2 3 2 2 2"),
    Row(M, "POST", "/organizations/{org_id}/dissolve",          "4 3 3 2 3 2 2 3", org_under_a),
    Row(M, "POST", "/applications",                             "2 2 2 2 2 2 2 2", body=new_application),  # public
    Row(M, "GET", "/applications/{application_id}",             "2 2 2 2 2 2 2 2"),  # public
    Row(M, "POST", "/applications/{application_id}/approve",    "4 3 3 2 3 2 2 3", application_in_a, empty),
    Row(M, "POST", "/applications/{application_id}/reject",     "4 3 3 2 3 2 2 3", application_in_a, reason("no")),
    Row(M, "GET", "/members/{member_id}",                       "4 2 3 2 3 2 2 2"),
    Row(M, "GET", "/members/{member_id}/personal-data",         "4 2 3 2 3 2 2 3"),
    Row(M, "GET", "/members/{member_id}/history",               "4 2 3 2 3 2 2 3"),
    Row(M, "POST", "/members/{member_id}/suspend",              "4 3 3 2 3 2 2 3", member_of_a, reason("arrears")),
    Row(M, "POST", "/members/{member_id}/reinstate",            "4 3 3 2 3 2 2 3", suspended_member, reason("paid")),
    Row(M, "POST", "/members/{member_id}/retain",               "4 3 3 2 3 2 2 3", member_of_a, reason("retired")),
    Row(M, "POST", "/members/{member_id}/restore",              "4 3 3 2 3 2 2 3", retained_member, reason("back")),
    Row(M, "POST", "/members/{member_id}/terminate",            "4 3 3 2 3 2 2 3", member_of_a, reason("left")),
    Row(M, "DELETE", "/members/{member_id}/personal-data",      "4 3 3 2 3 2 2 3", terminated_member),
    Row(M, "GET", "/founding-suggestions",                      "4 3 3 2 3 2 2 2", query=("org_id",)),
    Row(M, "GET", "/organizations/{org_id}/queue",              "4 3 3 2 3 2 2 3"),
    Row(M, "GET", "/organizations/search",                      "4 2 2 2 2 2 2 2", query=("region_code",)),
    Row(M, "GET", "/organizations/{org_id}/children",           "4 2 2 2 2 2 2 2"),
    Row(M, "GET", "/organizations/{org_id}/path",               "4 2 2 2 2 2 2 2"),
    Row(M, "GET", "/calendars",                                 "4 2 2 2 2 2 2 3"),  # systems: calendars:read
    Row(M, "GET", "/calendars/{year}",                          "4 2 2 2 2 2 2 3"),
    Row(M, "PUT", "/calendars/{year}",                          "4 3 3 3 3 3 2 3", body=notice_2027),  # admins
    Row(M, "GET", "/where-to-join",                             "2 2 2 2 2 2 2 2", query=("region_code",)),  # public
    Row(M, "POST", "/members/lookup",                           "4 3 3 2 3 2 2 3", body=lookup),
    Row(M, "GET", "/members/{member_id}/overview",              "4 2 3 2 3 2 2 3"),
    # transfers go from A to D: A's staff release, D's (or P's) accept; a bulk transfer needs staff covering both
    Row(T, "POST", "/transfers",                                "4 2 3 2 3 2 2 3", pool_member, transfer_to_d),
    Row(T, "GET", "/transfers/{transfer_id}",                   "4 2 3 2 3 2 2 2"),
    Row(T, "POST", "/transfers/{transfer_id}/release",          "4 3 3 2 3 2 2 3", requested_transfer, empty),
    Row(T, "POST", "/transfers/{transfer_id}/accept",           "4 3 3 3 3 2 2 3", released_transfer, empty),  # D acts
    Row(T, "POST", "/transfers/{transfer_id}/reject",           "4 3 3 2 3 2 2 3", requested_transfer, reason("no")),
    Row(T, "POST", "/transfers/{transfer_id}/cancel",           "4 2 3 2 3 2 2 3", own_request, empty),
    Row(T, "GET", "/members/{member_id}/transfers",             "4 2 3 2 3 2 2 2"),
    Row(T, "GET", "/organizations/{org_id}/transfers",          "4 3 3 2 3 2 2 2"),
    Row(T, "GET", "/organizations/{org_id}/transfer-stats",     "4 3 3 2 3 2 2 2"),
    Row(T, "POST", "/transfers/bulk",                           "4 3 3 3 3 2 2 3", pool_member, bulk_to_d),  # A and D
    Row(T, "GET", "/transfers/bulk/{batch_id}",                 "4 3 3 3 3 2 2 2"),  # a batch into D
    Row(C, "GET", "/members/{member_id}/card",                  "4 2 3 2 3 2 2 2"),
    Row(C, "GET", "/cards/{card_no}",                           "4 2 3 2 3 2 2 2"),
    Row(C, "POST", "/cards/{card_no}/reissue",                  "4 2 3 2 3 2 2 3", fresh_card, reason("lost")),
    Row(C, "POST", "/catalog/items",                            "4 3 3 2 3 2 2 3", body=new_item),  # of A
    Row(C, "GET", "/catalog/items",                             "4 2 2 2 2 2 2 2"),
    Row(C, "GET", "/catalog/items/{item_id}",                   "4 2 2 2 2 2 2 2"),
    Row(C, "POST", "/catalog/items/{item_id}/withdraw",         "4 3 3 2 3 2 2 3", item_of_a),
    Row(C, "POST", "/cards/{card_no}/redemptions",              "4 3 3 2 3 2 2 3", body=redeem),  # item: no quota
    Row(C, "GET", "/redemptions/{redemption_id}",               "4 2 3 2 3 2 2 2"),
    Row(C, "POST", "/redemptions/{redemption_id}/reverse",      "4 3 3 2 3 2 2 3", redemption_of_self, reason("oops")),
    Row(C, "GET", "/members/{member_id}/benefits",              "4 2 3 2 3 2 2 2"),
    Row(C, "GET", "/stats/usage",                               "4 3 3 2 3 2 2 2", query=("org_id",)),
    # an opinion is only its holder's: not even an admin gives it
    Row(F, "POST", "/ratings",                                  "4 2 3 3 3 3 3 3", rateable_redemption, rating),
    Row(F, "GET", "/organizations/{org_id}/satisfaction",       "4 3 3 2 3 2 2 2"),
    Row(F, "POST", "/campaigns",                                "4 3 3 2 3 2 2 3", body=new_campaign),  # over A
    Row(F, "GET", "/campaigns/{campaign_id}",                   "4 2 2 2 2 2 2 2"),
    Row(F, "POST", "/campaigns/{campaign_id}/ballots",          "4 2 3 3 3 3 3 3", campaign_over_a, ballot),
    Row(F, "POST", "/campaigns/{campaign_id}/close",            "4 3 3 2 3 2 2 3", campaign_over_a),
    Row(F, "GET", "/campaigns/{campaign_id}/results",           "4 2 2 2 2 2 2 2", use={"campaign_id": "closed"}),
    Row(F, "POST", "/requests",                                 "4 2 3 3 3 3 3 3", body=new_request),
    Row(F, "GET", "/requests/{request_id}",                     "4 2 3 2 3 2 2 3"),
    Row(F, "POST", "/requests/{request_id}/answer",             "4 3 3 2 3 2 2 3", request_of_self, answer),
    Row(F, "GET", "/organizations/{org_id}/requests",           "4 3 3 2 3 2 2 3"),
    # elections: run by the organisation's staff, the record public, a ballot its voter's alone
    Row(F, "POST", "/elections",                                "4 3 3 2 3 2 2 3", body=new_election),  # of A
    Row(F, "POST", "/elections/{election_id}/candidates",       "4 3 3 2 3 2 2 3", election_over_a, candidate),
    Row(F, "POST", "/elections/{election_id}/candidates/confirm", "4 3 3 2 3 2 2 3", nominated_election),
    Row(F, "POST", "/elections/{election_id}/rounds",           "4 3 3 2 3 2 2 3", confirmed_election, election_round),
    Row(F, "POST", "/elections/{election_id}/ballots",          "4 2 3 3 3 3 3 3", voter_in_election, election_ballot),
    Row(F, "POST", "/elections/{election_id}/close",            "4 3 3 2 3 2 2 3", voting_election),
    Row(F, "GET", "/elections/{election_id}",                   "4 2 2 2 2 2 2 2"),
    Row(F, "GET", "/elections/{election_id}/rounds/{round_no}/ballots", "4 2 2 2 2 2 2 2"),
    Row(F, "GET", "/elections/{election_id}/receipts/{receipt}", "4 2 2 2 2 2 2 2"),
    # allocations: opened and drawn by the organisation's staff; a member enters for themselves
    Row(C, "POST", "/allocations",                              "4 3 3 2 3 2 2 3", body=new_allocation),  # of A
    Row(C, "GET", "/allocations/{allocation_id}",               "4 2 2 2 2 2 2 2"),
    Row(C, "POST", "/allocations/{allocation_id}/entries",      "4 2 3 3 3 3 3 3", pool_member, entry),
    Row(C, "POST", "/allocations/{allocation_id}/draw",         "4 3 3 2 3 2 2 3", closed_draw),
    Row(C, "GET", "/members/{member_id}/entitlements",          "4 2 3 2 3 2 2 2"),
    Row(C, "POST", "/entitlements/{entitlement_id}/use",        "4 3 3 2 3 2 2 3", entitlement_of_a_member),
    # dues: policies are the admins'; a member reads and pays their own; staff of the member's organisation act;
    # the regional system (no dues:read, no dues:write) reads only the reports (stats:read)
    Row(D, "GET", "/dues/policies",                             "4 2 2 2 2 2 2 3"),
    Row(D, "POST", "/dues/policies",                            "4 3 3 3 3 3 2 3", body=future_policy),
    Row(D, "GET", "/members/{member_id}/dues",                  "4 2 3 2 3 2 2 3"),
    Row(D, "POST", "/members/{member_id}/dues/wage-base",       "4 3 3 2 3 2 2 3", pool_member, wage_base),
    Row(D, "POST", "/members/{member_id}/dues/payments",        "4 2 3 2 3 2 2 3", pool_member, dues_payment),
    Row(D, "POST", "/members/{member_id}/dues/exemptions",      "4 3 3 2 3 2 2 3", pool_member, exemption),
    Row(D, "GET", "/organizations/{org_id}/dues/cases",         "4 3 3 2 3 2 2 3"),
    Row(D, "POST", "/dues/cases/{case_id}/education",           "4 3 3 2 3 2 2 3", member_with_case, education),
    Row(D, "POST", "/dues/cases/{case_id}/lapse",               "4 3 3 2 3 2 2 3", educated_case, lapse),
    Row(D, "POST", "/organizations/{org_id}/checkoff",          "4 3 3 2 3 2 2 3", body=remittance),
    Row(D, "GET", "/checkoff/{remittance_id}",                  "4 3 3 2 3 2 2 3"),
    Row(D, "GET", "/organizations/{org_id}/dues/report",        "4 3 3 2 3 2 2 2", query=("first", "last")),
    Row(D, "GET", "/organizations/{org_id}/members-by-status",  "4 3 3 2 3 2 2 2"),
]  # fmt: skip

POOL_SIZE = sum(len(ROLES) - 1 for row in TABLE if row.setup in POOLED) + WORLD_MEMBERS


# --- the world -----------------------------------------------------------------------------------------


async def build(w: World) -> None:
    w.orgs["P"] = await w.org("county", None)
    w.orgs["A"], w.orgs["B"], w.orgs["D"] = await asyncio.gather(*(w.org("township", w.orgs["P"]) for _ in "ABD"))
    w.other, *w.pool = await asyncio.gather(w.join(w.orgs["B"]), *(w.join(w.orgs["A"]) for _ in range(POOL_SIZE)))
    await w.known_everywhere(list(w.pool), list(w.orgs.values()))
    me, batch_member, holder, in_arrears, *voters = (w.fresh() for _ in range(WORLD_MEMBERS))
    d = w.orgs["D"]
    transfer, batch, item, campaign, application, closed = await asyncio.gather(
        w.call(T, "POST", "/transfers", {"member_id": me, "to_org_id": d, "reason": "new job"}),
        w.call(T, "POST", "/transfers/bulk", {"member_ids": [batch_member], "to_org_id": d, "reason": "founded"}),
        w.call(C, "POST", "/catalog/items", item_body(w)),
        w.call(F, "POST", "/campaigns", campaign_body(w)),
        w.apply(w.orgs["A"]),
        w.call(F, "POST", "/campaigns", campaign_body(w, min_turnout=len(voters))),
    )
    closed_id = str(closed["campaign_id"])
    for voter in voters:
        ballot = {"voter_id": voter, "score": 4}
        await w.call(F, "POST", f"/campaigns/{closed_id}/ballots", ballot, as_="self", member_id=voter)
    assert (await w.call(F, "POST", f"/campaigns/{closed_id}/close"))["results_shown"]
    w.base = {
        "org_id": w.orgs["A"],
        "member_id": me,
        "card_no": w.cards[me],
        "transfer_id": str(transfer["transfer_id"]),
        "batch_id": str(batch["batch_id"]),
        "item_id": str(item["item_id"]),
        "campaign_id": str(campaign["campaign_id"]),
        "closed": closed_id,  # closed with three ballots of three needed: results shown
        "application_id": application,
    }
    redemption, request = await asyncio.gather(redemption_of_self(w, "admin"), request_of_self(w, "admin"))
    w.base |= redemption | request
    w.base["member_no"] = str((await w.call(M, "GET", f"/members/{me}"))["member_no"])
    w.base["region_code"] = "310115"
    w.base["year"] = "2027"
    election = await voting_election(w, "admin")
    allocation = await w.call(C, "POST", "/allocations", allocation_body(w))
    w.base |= election | {"round_no": "1", "receipt": "0" * 64, "allocation_id": str(allocation["allocation_id"])}
    w.base["entitlement_id"] = (await entitlement_of_a_member(w, "admin", holder))["entitlement_id"]
    remitted = await w.call(D, "POST", f"/organizations/{w.orgs['A']}/checkoff", remittance(w, w.base))
    w.base |= {"remittance_id": str(remitted["remittance_id"]), "first": this_month(), "last": this_month()}
    w.base["case_id"] = await w.open_case(in_arrears)


@pytest.fixture(scope="module")
async def world(platform: Platform, stack: Stack) -> AsyncIterator[World]:
    http = {name: httpx.AsyncClient(base_url=platform.url(name), timeout=30) for name in platform.services}
    db = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=4)
    prefix = platform.base_env["DB_SCHEMA_PREFIX"]
    dues = DuesService(
        DuesSettings(
            database_url=stack.dsn,
            db_schema=f"{prefix}dues",
            **stack.settings("dues"),
            topic_prefix=platform.base_env["TOPIC_PREFIX"],
            db_pool_size=4,
        )
    )
    await dues.runtime.start(background=False)  # its store only: the dues process relays what is appended here
    try:
        w = World(http, db, prefix, dues_service=dues)
        await build(w)
        yield w
    finally:
        await dues.runtime.stop()
        await db.close()
        for client in http.values():
            await client.aclose()


# --- the tests -----------------------------------------------------------------------------------------


def nobodys(base: Ctx) -> Ctx:
    """Ids of the same kinds as the world's, held by nobody."""
    digits = "".join(random.choices("0123456789", k=18))
    return {key: str(uuid.uuid4()) for key in base} | {"card_no": digits + luhn_check_digit(digits)}


def outcome(status: int) -> str:
    return "2" if 200 <= status < 300 else {401: "4", 403: "3"}.get(status, str(status))


async def attempt(w: World, row: Row, role: str) -> httpx.Response:
    ctx = dict(w.base) | {param: w.base[key] for param, key in row.use.items()}
    if row.setup is not None:
        ctx |= nobodys(w.base) if role == "none" else await row.setup(w, role)
    return await w.http[row.service].request(
        row.method,
        row.path.format(**ctx),
        params={name: ctx[name] for name in row.query},
        json=row.body(w, ctx) if row.body is not None else None,
        headers=w.headers(role, ctx, row.org),
    )


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
async def test_who_may_call_the_endpoint(world: World, row: Row) -> None:
    responses = await asyncio.gather(*(attempt(world, row, role) for role in ROLES))
    actual = [outcome(r.status_code) for r in responses]
    if actual != row.expected:
        width = max(len(role) for role in ROLES) + 1
        lines = [
            f"{row.service} {row.id}",
            "  " + " ".join(role.rjust(width) for role in ROLES),
            "  " + " ".join(CODES[code].rjust(width) for code in row.expected) + "   expected",
            "  " + " ".join(str(r.status_code).rjust(width) for r in responses) + "   actual",
        ]
        lines += [
            f"  {role}: {r.status_code} {r.text[:300]}"
            for role, code, r in zip(ROLES, row.expected, responses, strict=True)
            if outcome(r.status_code) != code
        ]
        pytest.fail("\n".join(lines), pytrace=False)


async def test_every_endpoint_has_a_row(world: World) -> None:
    """A new endpoint without a row in TABLE fails here, and so does a row for an endpoint that is gone."""
    served: set[tuple[str, str, str]] = set()
    for service, client in world.http.items():
        r = await client.get("/openapi.json")
        assert r.status_code == 200, r.text
        for path, operations in r.json()["paths"].items():
            if path not in NOT_ENDPOINTS:
                served |= {(service, method.upper(), path) for method in operations}
    listed = [(row.service, row.method, row.path) for row in TABLE]
    duplicated = sorted(key for key, n in Counter(listed).items() if n > 1)
    assert not duplicated, f"rows listed twice: {duplicated}"
    assert sorted(served - set(listed)) == [], "endpoints without a row in TABLE"
    assert sorted(set(listed) - served) == [], "rows for endpoints the services do not serve"
