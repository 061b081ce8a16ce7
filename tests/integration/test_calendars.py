"""Clocks that never stop: a year without its notice is counted provisionally, and counted again when an operator
loads the notice; membership over HTTP against the real PostgreSQL."""

from __future__ import annotations

import json
import tomllib
import uuid
from datetime import datetime
from typing import Any

from services.membership import calendars
from services.membership.overdue import run_overdue_applications
from shared.envelope import Envelope
from shared.workdays import CST
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_membership import join
from tests.integration.test_work_queue import apply, county_and_township, queue
from tests.support import auth
from tests.support.data import NOTICES
from tests.support.kafka import produce
from tests.support.waiting import eventually

ADMIN = auth.bearer("admin")


def notice_body(name: str = "2027.toml", **changes: Any) -> dict[str, Any]:
    """A notice file as `unionctl calendar load` sends it."""
    data = tomllib.loads((NOTICES / name).read_text("utf-8"))
    return json.loads(json.dumps({**data, **changes}, default=str))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


async def shipped_loaded(m: ServiceUnderTest) -> None:
    async def loaded() -> bool:
        r = await m.get("/calendars", headers=ADMIN)
        return any(y["year"] == 2026 and not y["provisional"] for y in r.json()["years"])

    await eventually(loaded, "the shipped 2026 notice to be loaded at start")


async def submitted_on_20_december(m: ServiceUnderTest) -> tuple[str, str, str]:
    """The issue's case: an application on 2026-12-20, when 2027's notice is not out. Its 15 working days are
    21-25 and 28-31 December, then (provisionally: 1 January off) 4-8 and 11 January 2027."""
    await shipped_loaded(m)
    county, township = await county_and_township(m)
    m.service.clock = lambda: at(2026, 12, 20, 10)
    return county, township, await apply(m, township)


async def test_a_provisional_clock_is_listed_and_escalated_like_any_other_and_stays_escalated(
    membership: ServiceUnderTest,
) -> None:
    m = membership
    county, township, application = await submitted_on_20_december(m)
    [item] = (await queue(m, township))["items"]
    assert (datetime.fromisoformat(item["deadline"]), item["provisional"]) == (at(2027, 1, 12), True)
    assert item["clock"]["counted_on"] == [
        {"year": 2026, "notice": "国办发明电〔2025〕7号"},
        {"year": 2027, "notice": None},
    ]
    assert item["clock"]["working_days"] == 15
    status = (await m.get(f"/applications/{application}", headers={"Authorization": ""})).json()  # the applicant's
    assert (datetime.fromisoformat(status["respond_by"]), status["provisional"]) == (at(2027, 1, 12), True)

    # 12 January 2027, 00:30: the clock ran out; the overdue worker escalates it to the county
    m.service.clock = lambda: at(2027, 1, 12, 0, 30)
    assert await run_overdue_applications(m.service.pool, m.service.membership, m.service.clock()) == 1
    [escalated] = (await queue(m, county))["items"]
    assert (escalated["id"], escalated["overdue"], escalated["escalated"]) == (application, True, True)

    # the notice comes after it ran out: loaded, and the clock stays as it ran out, escalated, saying so
    r = await m.put("/calendars/2027", notice_body(), headers=ADMIN)
    assert (r.status_code, r.json()["recounted"], r.json()["unchanged"]) == (200, [], 0)
    [item] = (await queue(m, county))["items"]
    assert (datetime.fromisoformat(item["deadline"]), item["overdue"], item["escalated"]) == (
        at(2027, 1, 12),
        True,
        True,
    )
    assert item["provisional"] is True  # it was counted provisionally, and is not counted again
    assert item["clock"]["counted_on"][1] == {
        "year": 2027,
        "notice": None,
        "published_after": "国办发明电〔2026〕99号（测试）",
    }


async def test_loading_the_notice_counts_a_running_provisional_clock_again_and_records_the_change(
    membership: ServiceUnderTest,
) -> None:
    m = membership
    _, township, application = await submitted_on_20_december(m)
    # 30 December 2026: the 2027 notice is published and loaded. 4 January is off too: the clock ends a day later
    m.service.clock = lambda: at(2026, 12, 30, 9)
    r = await m.put("/calendars/2027", notice_body(), headers=ADMIN)
    assert r.status_code == 200, r.text
    loaded = r.json()
    assert (loaded["loaded"], loaded["unchanged"]) == (True, 0)
    assert [(c["id"], c["previous_deadline"][:10], c["deadline"][:10]) for c in loaded["recounted"]] == [
        (application, "2027-01-12", "2027-01-13")  # 24:00 CST of the 11th, of the 12th
    ]
    [item] = (await queue(m, township))["items"]
    assert (datetime.fromisoformat(item["deadline"]), item["provisional"]) == (at(2027, 1, 13), False)
    assert item["clock"]["counted_on"][1] == {"year": 2027, "notice": "国办发明电〔2026〕99号（测试）"}

    # the change is in the member's dossier once the application is approved: old and new deadline, the notice
    r = await m.post(f"/applications/{application}/approve", {}, headers=ADMIN)
    assert r.status_code == 200, r.text
    history = (await m.get(f"/members/{r.json()['member_id']}/history", headers=ADMIN)).json()["events"]
    [recounted] = [e for e in history if e["event"] == "DeadlineRecounted"]
    assert datetime.fromisoformat(recounted["data"]["previous_deadline"]) == at(2027, 1, 12)
    assert datetime.fromisoformat(recounted["data"]["deadline"]) == at(2027, 1, 13)
    assert recounted["data"]["notice"] == "国办发明电〔2026〕99号（测试）"

    # loading the same notice again changes nothing; the calendar says who loaded it
    r = await m.put("/calendars/2027", notice_body(), headers=ADMIN)
    assert (r.status_code, r.json()["loaded"], r.json()["recounted"]) == (200, False, [])
    year = (await m.get("/calendars/2027", headers=ADMIN)).json()
    assert (year["provisional"], year["number"], year["loaded_by"]) == (
        False,
        "国办发明电〔2026〕99号（测试）",
        "admin:admin-dev",  # the token's role and name
    )

    # a corrected notice must say what it corrects; clocks counted on the one it replaces keep their deadlines
    corrected = notice_body(number="国办发明电〔2026〕100号（测试）")
    corrected["festivals"][0]["off"] = ["2027-01-01", "2027-01-02", "2027-01-03"]  # 4 January worked after all
    r = await m.put("/calendars/2027", corrected, headers=ADMIN)
    assert (r.status_code, r.json()["code"]) == (409, "notice_loaded")
    m.service.clock = lambda: at(2026, 12, 20, 10)
    second = await apply(m, township)
    r = await m.put("/calendars/2027", {**corrected, "replaces": "国办发明电〔2026〕99号（测试）"}, headers=ADMIN)
    assert (r.status_code, r.json()["loaded"], r.json()["recounted"]) == (200, True, [])
    [item] = (await queue(m, township))["items"]
    assert (item["id"], datetime.fromisoformat(item["deadline"])) == (second, at(2027, 1, 13))
    assert (await m.get("/calendars/2027", headers=ADMIN)).json()["number"] == "国办发明电〔2026〕100号（测试）"


async def test_a_recount_that_ends_a_clock_earlier_escalates_it_at_once(membership: ServiceUnderTest) -> None:
    """A provisional clock can also end late: the statutory rule knows no weekend day that the notice makes worked.
    Counted again on the notice, such a clock can turn out to have run out already; it is then overdue at once."""
    m = membership
    county, _, application = await submitted_on_20_december(m)
    early = notice_body()
    early["festivals"][0]["worked"] = ["2027-01-09", "2027-01-10"]  # a notice that works that weekend
    early["festivals"][0]["off"] = ["2027-01-01"]
    m.service.clock = lambda: at(2027, 1, 11, 12)
    r = await m.put("/calendars/2027", early, headers=ADMIN)
    assert r.status_code == 200, r.text
    [moved] = r.json()["recounted"]
    assert datetime.fromisoformat(moved["deadline"]) == at(2027, 1, 10)  # counted on 9 and 10 January: ran out
    assert await run_overdue_applications(m.service.pool, m.service.membership, m.service.clock()) == 1
    assert [i["id"] for i in (await queue(m, county))["items"]] == [application]


async def test_a_bad_notice_is_refused_with_every_problem_and_nothing_changes(membership: ServiceUnderTest) -> None:
    m = membership
    await shipped_loaded(m)
    body = notice_body()
    body["festivals"] = [f for f in body["festivals"] if f["festival"] != "mid_autumn"]
    body["festivals"][0]["worked"] = ["2027-01-06", "2026-11-28"]
    r = await m.put("/calendars/2027", body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {
            "field": "festivals[0].worked[1]",
            "reason": "2026-11-28 is not in 2027 (nor in the last week of the year before)",
        },
        {"field": "festivals[0].worked[0]", "reason": "2027-01-06 is a Wednesday: only a weekend day is worked (调休)"},
        {"field": "festivals", "reason": "the seven festivals must all be arranged; missing: 中秋节 (mid_autumn)"},
    ]
    r = await m.put("/calendars/2028", notice_body(), headers=ADMIN)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "year")
    year = (await m.get("/calendars/2027", headers=ADMIN)).json()
    assert year["provisional"] is True
    assert {f["festival"]: len(f["off"]) for f in year["festivals"]}["spring_festival"] == 4  # the statutory rule

    # where the package knows the year, a notice that disagrees with it is loaded only on purpose
    body = notice_body("../../../shared/notices/2026.toml")
    body["festivals"][0]["worked"] = []  # 4 January 2026 was worked
    r = await m.put("/calendars/2026", body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert "2026-01-04 (off in the notice)" in r.json()["errors"][0]["reason"]
    staff = auth.bearer("staff", org_id=str((await county_and_township(m))[0]))
    assert (await m.put("/calendars/2027", notice_body(), headers=staff)).status_code == 403
    assert (await m.get("/calendars", headers=ADMIN)).json()["years"][0]["year"] == 2025


async def test_loading_the_shipped_notices_twice_records_them_once(membership: ServiceUnderTest) -> None:
    m = membership
    await shipped_loaded(m)
    assert await calendars.load_shipped(m.service.store, m.service.pool, m.service.clock()) == 0
    async with m.service.pool.acquire() as conn:
        loads = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'WorkingCalendarLoaded'")
    assert loads == 2  # 2025 and 2026


async def test_a_members_request_raised_before_the_notice_is_counted_again_on_it(
    membership_consuming: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    m = membership_consuming
    await shipped_loaded(m)
    _, township = await county_and_township(m)
    member = (await join(m, township))["member_id"]
    request_id = str(uuid.uuid4())
    raised = Envelope(
        id=uuid.uuid4(),
        source="/union/feedback",
        type="union.feedback.RequestRaised.v1",
        subject=f"request-{request_id}",
        time=at(2026, 12, 20, 10),  # feedback's clock: when the member raised it
        partitionkey=member,
        data={"member_id": member, "request_id": request_id, "org_id": township, "category": "wages"},
    )
    await produce(stack.bootstrap, f"{topic_prefix}union.feedback.v1", [raised.to_kafka()])

    async def waiting() -> dict[str, Any] | None:
        items = [i for i in (await queue(m, township))["items"] if i["kind"] == "request"]
        return items[0] if items else None

    item = await eventually(waiting, "the request in the queue")
    assert (datetime.fromisoformat(item["deadline"]), item["provisional"]) == (at(2027, 1, 12), True)

    m.service.clock = lambda: at(2026, 12, 30, 9)
    r = await m.put("/calendars/2027", notice_body(), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [(c["kind"], c["id"]) for c in r.json()["recounted"]] == [("request", request_id)]
    item = await waiting()
    assert item is not None
    assert (datetime.fromisoformat(item["deadline"]), item["provisional"]) == (at(2027, 1, 13), False)
    async with m.service.pool.acquire() as conn:  # feedback owns the request: the change is in the calendar's stream
        recorded = await conn.fetch(
            "SELECT event_type, data FROM events WHERE stream_id = 'calendar-2027' ORDER BY version"
        )
    assert [r["event_type"] for r in recorded] == ["WorkingCalendarLoaded", "DeadlineRecounted"]
    assert datetime.fromisoformat(json.loads(recorded[1]["data"])["previous_deadline"]) == at(2027, 1, 12)
