"""Work queues with clocks, finding a union, finding a member, the member's overview: membership over HTTP against
the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.membership.handlers import Membership
from services.membership.overdue import SCHEDULER, run_overdue_applications
from shared.envelope import Envelope
from shared.errors import ConcurrencyError
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_membership import join, make_org
from tests.integration.test_membership_topics import wait_until
from tests.support import auth, data
from tests.support.kafka import produce, read_topic


async def queue(m: ServiceUnderTest, org_id: str, role: str = "staff", **params: Any) -> dict[str, Any]:
    headers = auth.bearer("staff", org_id=org_id) if role == "staff" else {}
    r = await m.get(f"/organizations/{org_id}/queue", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def apply(m: ServiceUnderTest, org_id: str, **overrides: object) -> str:
    r = await m.post("/applications", data.application(org_id, **overrides))
    assert r.status_code == 201, r.text
    return str(r.json()["application_id"])


async def county_and_township(m: ServiceUnderTest) -> tuple[str, str]:
    county = await make_org(m, "county")
    return county, await make_org(m, "township", county)


async def test_staff_see_what_waits_for_them_and_it_leaves_once_acted_on(membership: ServiceUnderTest) -> None:
    m = membership
    county, township = await county_and_township(m)
    first = await apply(m, township, name="张伟")
    second = await apply(m, township)
    page = await queue(m, township)
    assert [i["id"] for i in page["items"]] == [first, second]  # oldest first
    item = page["items"][0]
    assert (item["kind"], item["step"], item["overdue"], item["escalated"]) == ("application", "review", False, False)
    assert item["member"]["name_masked"] == "张*"
    assert "*" * 8 in item["member"]["id_number_masked"]
    submitted = datetime.fromisoformat(item["submitted_at"])
    assert datetime.fromisoformat(item["deadline"]) - submitted > timedelta(days=15)  # 15 working days
    assert item["organization"]["org_id"] == township
    assert (await queue(m, county))["items"] == []  # the county's own queue: nothing escalated to it
    assert [i["id"] for i in (await queue(m, county, subtree=True))["items"]] == [first, second]

    r = await m.post(f"/applications/{first}/approve", {}, headers=auth.bearer("staff", org_id=township))
    assert r.status_code == 200, r.text
    r = await m.post(f"/applications/{second}/reject", {"reason": "不在本单位"})
    assert r.status_code == 200, r.text
    assert (await queue(m, township))["items"] == []


async def test_paging_by_cursor_and_filters(membership: ServiceUnderTest) -> None:
    m = membership
    _, township = await county_and_township(m)
    ids = [await apply(m, township) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await queue(m, township, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids
    assert (await queue(m, township, kind="transfer"))["items"] == []
    assert (await queue(m, township, overdue="true"))["items"] == []
    r = await m.get(f"/organizations/{township}/queue", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")
    r = await m.get(f"/organizations/{township}/queue", params={"kind": "ballot"})
    assert r.status_code == 422


async def test_an_overdue_application_is_recorded_once_and_joins_the_parents_queue(
    membership: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    m = membership
    county, township = await county_and_township(m)
    late, on_time = await apply(m, township), await apply(m, township)
    pool, handlers = m.service.pool, m.service.membership
    now = datetime.now(UTC)

    # two writers at once (two replicas, or a restart mid-way): the stream's version lets one through
    async def mark() -> bool | str:
        try:
            async with pool.acquire() as conn, conn.transaction():
                return bool(await Membership.mark_application_overdue(handlers, conn, uuid.UUID(late), now, SCHEDULER))
        except ConcurrencyError:
            return "conflict"

    # the stream's own clock (respond_by) is 15 working days away: marking needs a `now` past it
    assert await mark() is False
    now = datetime.now(UTC) + timedelta(days=40)
    outcomes = await asyncio.gather(mark(), mark())
    assert sorted(map(str, outcomes)) in (["False", "True"], ["True", "conflict"])
    # the worker, now: the first is recorded already and the second is not due
    assert await run_overdue_applications(pool, handlers, datetime.now(UTC)) == 0

    county_queue = await queue(m, county)
    [item] = county_queue["items"]
    assert (item["id"], item["overdue"], item["escalated"], item["escalated_to_org_id"]) == (late, True, True, county)
    township_queue = await queue(m, township)
    assert [i["id"] for i in township_queue["items"]] == [late, on_time]  # overdue first
    assert [i["id"] for i in (await queue(m, township, overdue="false"))["items"]] == [on_time]

    records = await read_topic(stack.bootstrap, f"{topic_prefix}union.membership.v1", expect=5)
    overdue = [r for r in records if b"ApplicationOverdue" in dict(r.headers)["ce_type"] and late.encode() in r.value]
    assert len(overdue) == 1

    # once reviewed it leaves both queues
    r = await m.post(f"/applications/{late}/approve", {}, headers=auth.bearer("staff", org_id=county))
    assert r.status_code == 200, r.text
    assert (await queue(m, county))["items"] == []


async def test_the_worker_marks_overdue_applications_by_itself(membership: ServiceUnderTest) -> None:
    m = membership
    county, township = await county_and_township(m)
    application = await apply(m, township)
    m.service.clock = lambda: datetime.now(UTC) + timedelta(days=60)  # two months on: every clock ran out
    m.service.overdue.wake()

    async def escalated() -> bool:
        return [i["id"] for i in (await queue(m, county))["items"]] == [application]

    await wait_until(escalated)


def envelope(name: str, source: str, member_id: str, **fields: object) -> Any:
    return Envelope(
        id=uuid.uuid4(),
        source=source,
        type=f"union.{source.rsplit('/', 1)[1]}.{name}.v1",
        subject=f"{name}-{uuid.uuid4()}",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={"member_id": member_id, **fields},
    ).to_kafka()


async def test_transfers_and_requests_from_other_services_wait_for_the_side_that_must_act(
    membership_consuming: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    m = membership_consuming
    county, township = await county_and_township(m)
    other = await make_org(m, "township", county)
    member = (await join(m, township))["member_id"]
    transfer_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    sides = {"transfer_id": transfer_id, "from_org_id": township, "to_org_id": other}
    now = datetime.now(UTC)
    await produce(
        stack.bootstrap,
        f"{topic_prefix}union.transfer.v1",
        [
            envelope(
                "TransferRequested",
                "/union/transfer",
                member,
                **sides,
                reason="new job",
                requested_by="member",
                requested_at=now.isoformat(),
                expires_at=(now + timedelta(days=30)).isoformat(),
            )
        ],
    )
    await produce(
        stack.bootstrap,
        f"{topic_prefix}union.feedback.v1",
        [
            envelope(
                "RequestRaised", "/union/feedback", member, request_id=request_id, org_id=township, category="wages"
            )
        ],
    )

    async def both_wait() -> bool:
        return {i["kind"] for i in (await queue(m, township))["items"]} == {"transfer", "request"}

    await wait_until(both_wait)
    overview = (await m.get(f"/members/{member}/overview", headers=auth.bearer("member", member_id=member))).json()
    assert overview["open_transfer"]["id"] == transfer_id
    assert [r["request_id"] for r in overview["requests"]] == [request_id]
    assert {x["kind"] for x in overview["open_matters"]} == {"transfer", "request"}

    await produce(
        stack.bootstrap,
        f"{topic_prefix}union.transfer.v1",
        [envelope("TransferReleased", "/union/transfer", member, **sides, by="staff")],
    )

    async def moved_to_the_target() -> bool:
        items = (await queue(m, other))["items"]
        return [(i["kind"], i["step"]) for i in items] == [("transfer", "accept")]

    await wait_until(moved_to_the_target)
    await produce(
        stack.bootstrap,
        f"{topic_prefix}union.feedback.v1",
        [envelope("RequestAnswered", "/union/feedback", member, request_id=request_id, org_id=township, by="staff")],
    )

    async def answered() -> bool:
        return (await queue(m, township))["items"] == []

    await wait_until(answered)
    overview = (await m.get(f"/members/{member}/overview")).json()
    assert overview["requests"][0]["answered"] is True
    timeline = [e["event"] for e in overview["timeline"]]
    assert sorted(timeline[-4:]) == ["RequestAnswered", "RequestRaised", "TransferReleased", "TransferRequested"]
    assert timeline.index("TransferRequested") < timeline.index("TransferReleased")  # one topic: in order


async def test_lookup_by_identity_number_or_member_number_within_the_subtree(membership: ServiceUnderTest) -> None:
    m = membership
    county, township = await county_and_township(m)
    sibling = await make_org(m, "township", county)
    joined = await join(m, township)
    for body in ({"id_number": joined["id_number"]}, {"member_no": joined["member_no"]}):
        for org in (township, county):
            r = await m.post("/members/lookup", body, headers=auth.bearer("staff", org_id=org, name="clerk"))
            assert r.status_code == 200, r.text
            assert r.json()["member_id"] == joined["member_id"]
            assert joined["id_number"] not in r.text
        r = await m.post("/members/lookup", body, headers=auth.bearer("staff", org_id=sibling))
        assert (r.status_code, r.json()["code"]) == (403, "outside_organization")
    r = await m.post("/members/lookup", {"id_number": data.identity_number()})
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    r = await m.post("/members/lookup", {})
    assert r.status_code == 422
    async with m.service.pool.acquire() as conn:
        audited = await conn.fetch(
            "SELECT action, outcome FROM audit_log WHERE target = $1", f"member:{joined['member_id']}"
        )
    actions = [(a["action"], a["outcome"]) for a in audited]
    assert actions.count(("member.lookup_by_id_number", "allowed")) == 2
    assert ("member.lookup_by_id_number", "refused:outside_organization") in actions
    assert ("member.lookup", "allowed") not in actions  # a member number is not personal data


async def test_finding_a_union(membership: ServiceUnderTest) -> None:
    m = membership
    tag = uuid.uuid4().hex[:6]
    city = await make_org(m, "city", None, name=f"{tag}上海市浦东新区总工会", region_code="310100")
    county = await make_org(m, "county", city, name=f"{tag}浦东新区总工会")
    code = data.credit_code()
    own = await make_org(m, "enterprise", county, name=f"{tag}张江科技有限公司工会", credit_code=code)
    regional = await make_org(m, "federation", county, name=f"{tag}陆家嘴区域工会联合会", subtype="regional")
    industry = await make_org(
        m, "federation", county, name=f"{tag}快递行业工会联合会", subtype="industry", industry="快递"
    )
    found = (await m.get("/organizations/search", params={"q": "浦东"})).json()["items"]
    assert {o["org_id"] for o in found} == {city, county}
    found = (await m.get("/organizations/search", params={"q": tag, "type": "federation"})).json()["items"]
    assert {o["org_id"] for o in found} == {regional, industry}
    r = await m.get("/organizations/search", params={"q": tag, "region_code": "310000", "limit": 2})
    assert len(r.json()["items"]) == 2
    r2 = await m.get(
        "/organizations/search", params={"q": tag, "region_code": "310000", "cursor": r.json()["next_cursor"]}
    )
    assert len(r2.json()["items"]) == 3
    assert (await m.get("/organizations/search", params={"q": "100%"})).json()["items"] == []  # % is literal

    children = (await m.get(f"/organizations/{county}/children")).json()["items"]
    assert {c["org_id"] for c in children} == {own, regional, industry}
    path = (await m.get(f"/organizations/{own}/path")).json()["path"]
    assert [o["org_id"] for o in path] == [city, county, own]

    async def where(**params: str) -> Any:
        r = await m.http.get("/where-to-join", params=params, headers={"Authorization": ""})
        assert r.status_code == 200, r.text
        return r.json()["recommended"]

    assert (await where(credit_code=code, region_code="310115"))["org_id"] == own
    assert (await where(employer_name=f"{tag}张江科技", region_code="310115"))["org_id"] == own
    assert (await where(credit_code=data.credit_code(), region_code="310115", industry="快递"))["org_id"] == industry
    stranger = await where(credit_code=data.credit_code(), region_code="310115")
    assert (stranger["org_id"], stranger["basis"]) == (regional, "regional_federation")
    r = await m.http.get("/where-to-join", params={"region_code": "990101"}, headers={"Authorization": ""})
    assert r.status_code == 422
