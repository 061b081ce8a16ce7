"""The dues service against the real PostgreSQL and broker: it follows membership (joins, retention, the lapse it
decided), takes check-off remittances, and answers for a past date the same before and after a policy change."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.integration.test_membership import join, make_org


@pytest.fixture
async def dues(stack: Stack, unique: str, topic_prefix: str, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    from services.dues.main import build_app  # noqa: PLC0415
    from services.dues.service import DuesSettings  # noqa: PLC0415

    settings = DuesSettings(
        database_url=stack.dsn,
        db_schema=f"d_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        relay_poll_interval=0.05,
        dues_review_interval=3600,  # the review runs once at start; payments assess their month
    )
    async with serve_in_process(build_app(settings)) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        else:
            return result
        await asyncio.sleep(0.1)


async def test_dues_follow_membership_take_checkoff_and_keep_the_past(
    membership_consuming: ServiceUnderTest, dues: ServiceUnderTest
) -> None:
    m = membership_consuming
    county = await make_org(m, "county")
    town = await make_org(m, "township", county)
    paying, retiring = await join(m, town), await join(m, town)

    async def account(member_id: str, **query: str) -> dict[str, Any]:
        r = await dues.get(f"/members/{member_id}/dues", params=query)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    await eventually(lambda: account(paying["member_id"]))
    await eventually(lambda: account(retiring["member_id"]))
    r = await dues.post(
        f"/members/{paying['member_id']}/dues/wage-base",
        {"monthly_base": "4567.89", "from_month": f"{datetime.now(UTC):%Y-%m}"},
    )
    assert r.status_code == 200, r.text

    this_month = f"{datetime.now(UTC):%Y-%m}"
    # check-off: one line paid in part, one unknown member
    r = await dues.post(
        f"/organizations/{town}/checkoff",
        {
            "month": this_month,
            "lines": [{"member_no": paying["member_no"], "amount": "10.00"}, {"member_no": "X-1", "amount": "5"}],
        },
    )
    assert r.status_code == 201, r.text
    outcome = r.json()
    assert (outcome["matched"], outcome["partial"], outcome["already_applied"]) == (1, 1, 0)
    assert [u["reason"] for u in outcome["unmatched"]] == ["no member with this number"]
    again = await dues.post(
        f"/organizations/{town}/checkoff",
        {"month": this_month, "lines": [{"member_no": paying["member_no"], "amount": "10.00"}]},
    )
    assert again.json()["already_applied"] == 1  # a re-run applies only what is missing
    # the payment assessed its month: 0.5% of 4560 (the remainder under 10 yuan not counted)
    months = (await account(paying["member_id"]))["months"]
    assert [(x["month"], x["state"], x["expected"], x["paid"]) for x in months] == [
        (this_month, "partial", "22.80", "10.00")
    ]
    bad = await dues.post(
        f"/organizations/{town}/checkoff", {"month": this_month, "lines": [{"member_no": "A", "amount": "1.234"}]}
    )
    assert bad.status_code == 422
    assert "line 1: amount" in bad.text

    # as of now, before and after a policy change: the same
    await asyncio.sleep(0.01)
    as_of = datetime.now(UTC).isoformat()
    before = await account(paying["member_id"], as_of=as_of)
    assert before["months"][0]["arrears"] == "12.80"
    next_month = (datetime.now(UTC).date().replace(day=1) + timedelta(days=32)).replace(day=1)
    retro = await dues.post("/dues/policies", {"effective_from": this_month, "rate": "0.01", "citation": "test"})
    assert retro.status_code == 409
    assert retro.json()["code"] == "policy_retroactive"
    r = await dues.post(
        "/dues/policies", {"effective_from": f"{next_month:%Y-%m}", "rate": "0.01", "unpaid_months": 3, "citation": "t"}
    )
    assert r.status_code == 201, r.text
    assert await account(paying["member_id"], as_of=as_of) == before
    assert (await account(paying["member_id"]))["months"] == before["months"]

    # retirement: membership retains; dues follow; the report as of today counts it
    r = await m.post(f"/members/{retiring['member_id']}/retain", {"reason": "retired"})
    assert r.status_code == 200
    assert r.json()["status"] == "retained", r.text

    async def retained() -> None:
        assert (await account(retiring["member_id"]))["status"] == "retained"

    await eventually(retained)
    report = (await dues.get(f"/organizations/{county}/members-by-status")).json()
    assert report["by_status"]["retained"] == 1
    assert report["by_status"]["active"] == 1
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    earlier = (await dues.get(f"/organizations/{county}/members-by-status", params={"as_of": yesterday})).json()
    assert earlier["total"] == 0  # they joined today
    money = await dues.get(f"/organizations/{county}/dues/report", params={"first": this_month, "last": this_month})
    assert [(x["expected"], x["collected"], x["arrears"]) for x in money.json()["items"]] == [
        ("22.80", "10.00", "12.80")
    ]


async def test_a_lapse_decided_on_the_case_is_recorded_by_membership(
    membership_consuming: ServiceUnderTest, dues: ServiceUnderTest
) -> None:
    """Six months are simulated: the account is opened half a year back (the decider takes the dates), then the
    case goes through the HTTP routes: education, the grace period (set to 0 days), the staff decision."""
    from services.dues import domain  # noqa: PLC0415
    from shared.store import Metadata  # noqa: PLC0415

    m = membership_consuming
    town = await make_org(m, "township")
    member = await join(m, town)
    member_id = uuid.UUID(member["member_id"])
    service = dues.service
    await eventually(lambda: _has_account(dues, member["member_id"]))
    today = datetime.now(UTC).date()
    past = (today.replace(day=1) - timedelta(days=280)).replace(day=1)
    opened_on = today - timedelta(days=45)
    async with service.pool.acquire() as conn, conn.transaction():
        stream, state = await service.dues.account(conn, member_id)
        assert state is not None
        reopened = dataclasses.replace(state, opened_on=past)  # as if the account had been opened then
        events = domain.review(reopened, [], opened_on, uuid.uuid4())
        await service.store.append(conn, stream, events, Metadata(actor="test"))
    # the case as staff see it in the organisation's queue, with its clock
    cases = (await dues.get(f"/organizations/{town}/dues/cases")).json()["items"]
    assert [c["member_id"] for c in cases] == [member["member_id"]]
    case_id = cases[0]["case_id"]
    r = await dues.post(f"/dues/cases/{case_id}/lapse", {"reason": "r", "no_part_in_union_life": True})
    assert r.status_code == 409
    assert r.json()["code"] == "education_missing"
    contacted = today - timedelta(days=29)
    r = await dues.post(f"/dues/cases/{case_id}/education", {"contacted_on": str(contacted), "note": "visited at home"})
    assert r.status_code == 200, r.text
    clock = (await dues.get(f"/members/{member_id}/dues")).json()["case"]
    assert clock["waiting_for"] == "grace_period"
    assert clock["days_left"] == 1  # visible to staff and the member
    r = await dues.post(f"/dues/cases/{case_id}/lapse", {"reason": "r", "no_part_in_union_life": True})
    assert r.status_code == 409
    assert r.json()["code"] == "grace_period_running"
    # a contact recorded 31 days ago: the 30-day grace period is over, staff decide, membership records the lapse
    other = await join(m, town)
    other_id = uuid.UUID(other["member_id"])
    await eventually(lambda: _has_account(dues, other["member_id"]))
    async with service.pool.acquire() as conn, conn.transaction():
        stream, state = await service.dues.account(conn, other_id)
        assert state is not None
        case_id = str(uuid.uuid4())
        events = domain.review(dataclasses.replace(state, opened_on=past), [], opened_on, uuid.UUID(case_id))
        await service.store.append(conn, stream, events, Metadata(actor="test"))
    when = str(today - timedelta(days=31))
    assert (await dues.post(f"/dues/cases/{case_id}/education", {"contacted_on": when, "note": "n"})).status_code == 200
    r = await dues.post(f"/dues/cases/{case_id}/lapse", {"reason": "six months", "no_part_in_union_life": True})
    assert r.status_code == 200, r.text

    async def lapsed() -> None:
        assert (await m.get(f"/members/{other_id}")).json()["status"] == "lapsed"
        assert (await dues.get(f"/members/{other_id}/dues")).json()["status"] == "lapsed"

    await eventually(lapsed)


async def _has_account(dues: ServiceUnderTest, member_id: str) -> None:
    r = await dues.get(f"/members/{member_id}/dues")
    assert r.status_code == 200, r.text


async def test_a_checkoff_file_is_refused_whole_with_its_errors_and_a_rerun_applies_only_what_is_missing(
    dues: ServiceUnderTest, tmp_path: Path
) -> None:
    """`python -m services.dues.checkoff`: a file with a wrong line applies nothing; one cut short (as by a crash
    between batches) and then run whole pays every member once; every member's events stay in order."""
    import typer  # noqa: PLC0415

    from bench.dues import accounts, write_remittance  # noqa: PLC0415
    from services.dues.checkoff import run_import  # noqa: PLC0415

    settings = dues.service.settings
    month = datetime.now(UTC).date().replace(day=1)
    org = await accounts(settings, 40, month)  # members B-00000000 .. B-00000039 of one township
    whole, bad, short = tmp_path / "whole.csv", tmp_path / "bad.csv", tmp_path / "short.csv"
    write_remittance(whole, 140)  # 40 members (every tenth paying short) and 100 lines naming nobody
    text = whole.read_text(encoding="utf-8")
    bad.write_text(text + "B-00000001,abc\nB-00000002,1.00\n", encoding="utf-8")
    short.write_text("\n".join(text.splitlines()[:16]) + "\n", encoding="utf-8")  # the header and 15 lines

    async def paid() -> int:
        async with dues.service.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'DuesPaid'"))

    with pytest.raises(typer.Exit):
        await run_import(bad, org, month, settings, batch_size=7)
    assert await paid() == 0  # errors by line (the amount, the second line of a member), nothing applied
    first = await run_import(short, org, month, settings, batch_size=7)
    assert (first.lines, first.matched, first.partial, first.already_applied) == (15, 15, 2, 0)
    rest = await run_import(whole, org, month, settings, batch_size=7)
    assert (rest.lines, rest.matched, rest.partial, rest.already_applied) == (140, 25, 2, 15)
    assert len(rest.unmatched) == 100
    assert await paid() == 40
    async with dues.service.pool.acquire() as conn:
        ledger = await conn.fetch(
            "SELECT l.paid, l.expected FROM dues_ledger l JOIN dues_accounts a USING (member_id)"
            " WHERE a.org_id = $1 AND l.month = $2",
            org,
            month,
        )
        out_of_order = await conn.fetchval(
            "SELECT count(*) FROM events p JOIN events a ON a.stream_id = p.stream_id AND a.event_type = 'DuesAssessed'"
            " WHERE p.event_type = 'DuesPaid' AND a.version > p.version"
        )
    assert len(ledger) == 40
    assert sum(1 for r in ledger if r["paid"] < r["expected"]) == 4  # the month assessed, then paid, once
    assert out_of_order == 0


# the report as it was computed before its read model: over every ledger row of the subtree (the plain answer)
PLAIN_REPORT = """
SELECT l.org_id, l.month,
       sum(CASE WHEN l.liable AND NOT l.exempt THEN coalesce(l.expected, 0) ELSE 0 END) AS expected,
       sum(l.paid) AS collected,
       sum(CASE WHEN l.liable AND NOT l.exempt THEN greatest(coalesce(l.expected, 0) - l.paid, 0) ELSE 0 END)
           AS arrears,
       count(*) FILTER (WHERE l.liable AND NOT l.exempt) AS members_liable
FROM dues_ledger l
WHERE l.month BETWEEN $2 AND $3 AND l.org_id IN (SELECT org_id FROM directory_subtree($1::uuid))
GROUP BY l.org_id, l.month ORDER BY l.month, l.org_id
"""


async def test_the_dues_report_from_its_totals_equals_the_plain_sum_over_the_ledger(
    membership_consuming: ServiceUnderTest, dues: ServiceUnderTest
) -> None:
    """Random months of assessments (liable or not), payments (part, whole, over) and exemptions over two townships:
    the report read from the organisations' monthly totals equals the sum over the members' ledger rows, for the
    county and each township, and again after the ledger is rebuilt from the log."""
    import random  # noqa: PLC0415
    from decimal import Decimal  # noqa: PLC0415

    from services.dues.events import DuesAssessed, DuesExempted, DuesPaid  # noqa: PLC0415
    from services.dues.handlers import account_stream  # noqa: PLC0415
    from shared.store import Metadata  # noqa: PLC0415

    m, service, rng = membership_consuming, dues.service, random.Random(28)
    county = await make_org(m, "county")
    towns = [await make_org(m, "township", county) for _ in range(2)]

    async def known() -> None:
        n = await service.pool.fetchval("SELECT count(*) FROM directory_orgs WHERE org_id = ANY($1::uuid[])", towns)
        assert n == 2

    await eventually(known)
    months = [datetime(2026, mo, 1, tzinfo=UTC).date() for mo in (1, 2, 3)]
    for _ in range(30):
        member, org = uuid.uuid4(), uuid.UUID(rng.choice(towns))
        events: list[Any] = []
        for month in months:
            liable = rng.random() > 0.2
            amount = Decimal(rng.choice(["12.50", "20.00", "7.35"]))
            events.append(
                DuesAssessed(
                    member_id=member,
                    org_id=org,
                    month=month,
                    liable=liable,
                    reason=None if liable else "retained",
                    rate=Decimal("0.005") if liable else None,
                    amount=amount if liable else None,
                    policy_from=months[0],
                )
            )
            for n in range(rng.choice([0, 0, 1, 2])):
                paid = Decimal(rng.choice(["5.00", "12.50", "30.00"]))
                events.append(
                    DuesPaid(
                        member_id=member,
                        org_id=org,
                        month=month,
                        amount=paid,
                        paid_by="online",
                        payment_ref=f"{member}-{month}-{n}",
                        paid_on=month,
                    )
                )
        if rng.random() < 0.3:
            events.append(DuesExempted(member_id=member, from_month=months[1], to_month=months[2], reason="hardship"))
        async with service.pool.acquire() as conn, conn.transaction():
            stream = await service.store.load(conn, account_stream(member))
            await service.store.append(conn, stream, events, Metadata(actor="test"))

    async def compare() -> None:
        for org in (county, *towns):
            answer = (
                await dues.get(f"/organizations/{org}/dues/report", params={"first": "2026-01", "last": "2026-03"})
            ).json()["items"]
            plain = await service.pool.fetch(PLAIN_REPORT, org, months[0], months[-1])
            assert [
                (
                    i["org_id"],
                    i["month"],
                    Decimal(i["expected"]),
                    Decimal(i["collected"]),
                    Decimal(i["arrears"]),
                    i["members_liable"],
                )
                for i in answer
            ] == [
                (
                    str(r["org_id"]),
                    f"{r['month']:%Y-%m}",
                    r["expected"],
                    r["collected"],
                    r["arrears"],
                    r["members_liable"],
                )
                for r in plain
            ]
            assert answer  # each township has rows; the county's are its two townships'

    await compare()
    assert await service.runtime.projections.rebuild("ledger") > 0
    await compare()
