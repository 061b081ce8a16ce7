"""A member's life across the four services, each a process, driven over HTTP as a client would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support import auth, data
from tests.support.waiting import eventually

JSON = {"content-type": "application/json"}


async def org(m: httpx.AsyncClient, type_: str, parent: str | None = None, **extra: object) -> str:
    r = await m.post(
        "/organizations",
        json={"name": f"{type_} union", "type": type_, "region_code": "310115", "parent_id": parent, **extra},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["org_id"])


async def join(m: httpx.AsyncClient, org_id: str) -> dict[str, Any]:
    r = await m.post("/applications", json=data.application(org_id))
    assert r.status_code == 201, r.text
    r = await m.post(f"/applications/{r.json()['application_id']}/approve", json={"reviewer": "staff"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_join_card_redeem_transfer_and_the_dossier(clients: dict[str, httpx.AsyncClient]) -> None:
    m, t, c = clients["membership"], clients["transfer"], clients["servicecard"]
    county = await org(m, "county")
    a = await org(m, "township", county)
    b = await org(m, "federation", county, subtype="regional")
    joined = await join(m, a)
    member_id = joined["member_id"]

    async def card() -> dict[str, Any] | None:
        r = await c.get(f"/members/{member_id}/card")
        return r.json() if r.status_code == 200 else None

    issued = await eventually(card)
    assert (issued["status"], issued["org_id"], len(issued["card_no"])) == ("active", a, 19)
    item = await c.post(
        "/catalog/items",
        json={
            "name": "法律咨询",
            "category": "legal_aid",
            "provider": "区法律援助中心",
            "standard": "每次一小时",
            "quota_per_year": 2,
        },
    )
    assert item.status_code == 201, item.text
    redeemed = await c.post(
        f"/cards/{issued['card_no']}/redemptions",
        json={"item_id": item.json()["item_id"]},
        headers={"Idempotency-Key": f"redeem-{member_id}"},
    )
    assert redeemed.status_code == 201, redeemed.text

    async def requested() -> dict[str, Any] | None:
        r = await t.post(
            "/transfers", json={"member_id": member_id, "to_org_id": b, "reason": "new job", "requested_by": "member"}
        )
        return r.json() if r.status_code == 201 else None  # until transfer has consumed the member

    transfer_id = (await eventually(requested))["transfer_id"]
    assert (await t.post(f"/transfers/{transfer_id}/release", json={"by": "staff-a"})).status_code == 200
    assert (await t.post(f"/transfers/{transfer_id}/accept", json={"by": "staff-b"})).status_code == 200
    assert (await t.get(f"/transfers/{transfer_id}")).json()["status"] == "completed"

    async def moved() -> dict[str, Any] | None:
        member = (await m.get(f"/members/{member_id}")).json()
        return member if member["org_id"] == b else None

    member = await eventually(moved)
    assert member["member_no"] == joined["member_no"]

    async def card_moved() -> dict[str, Any] | None:
        now = await card()
        return now if now and now["org_id"] == b else None

    assert (await eventually(card_moved))["card_no"] == issued["card_no"]

    wanted = {"MemberJoined", "CardIssued", "BenefitRedeemed", "TransferCompleted", "MemberOrganizationChanged"}

    async def dossier() -> list[dict[str, Any]] | None:
        events = (await m.get(f"/members/{member_id}/history")).json()["events"]
        return events if wanted <= {e["event"] for e in events} else None

    events = await eventually(dossier)
    sources = {e["event"]: e["source"] for e in events}
    assert sources["CardIssued"] == "/union/servicecard"
    assert sources["TransferCompleted"] == "/union/transfer"
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)


async def test_members_vote_the_campaign_closes_results_appear(clients: dict[str, httpx.AsyncClient]) -> None:
    m, f = clients["membership"], clients["feedback"]
    county = await org(m, "county")
    town = await org(m, "township", county)
    voters = [(await join(m, town))["member_id"] for _ in range(6)]
    now = datetime.now(UTC)
    campaign = {
        "title": "2026年度工会工作评议",
        "subject_type": "organization",
        "subject_id": town,
        "electorate_org_id": county,
        "electorate": "members",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat(),
        "min_turnout": 5,
    }

    async def opened() -> dict[str, Any] | None:
        r = await f.post("/campaigns", json=campaign)
        return r.json() if r.status_code == 201 and r.json().get("eligible") == len(voters) else None

    campaign_id = (await eventually(opened))["campaign_id"]
    for voter, score in zip(voters, [5, 4, 4, 3, 5, 2], strict=True):
        # each member votes with their own token: the voter is who the token says
        r = await f.post(
            f"/campaigns/{campaign_id}/ballots", json={"score": score}, headers=auth.bearer("member", member_id=voter)
        )
        assert r.status_code == 201, r.text
    again = await f.post(
        f"/campaigns/{campaign_id}/ballots", json={"score": 1}, headers=auth.bearer("member", member_id=voters[0])
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_voted")
    early = await f.get(f"/campaigns/{campaign_id}/results")
    assert early.status_code == 409
    assert (await f.post(f"/campaigns/{campaign_id}/close")).status_code == 200
    results = (await f.get(f"/campaigns/{campaign_id}/results")).json()
    assert results["turnout"] == 6
    assert abs(results["average"] - 23 / 6) < 0.01
    assert {int(k): v for k, v in results["distribution"].items()} == {1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
