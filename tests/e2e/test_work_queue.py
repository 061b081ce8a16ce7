"""The work queue across services: a transfer asked for in the transfer service waits in membership's queue for the
side that must act, and leaves it once acted on; a request raised in feedback waits until it is answered."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import eventually
from tests.e2e.test_member_life import join, org
from tests.support import auth


async def waiting(m: httpx.AsyncClient, org_id: str) -> list[tuple[str, str]]:
    r = await m.get(f"/organizations/{org_id}/queue", headers=auth.bearer("staff", org_id=org_id))
    assert r.status_code == 200, r.text
    return [(i["kind"], i["step"]) for i in r.json()["items"]]


async def test_matters_wait_for_the_side_that_must_act_and_leave_once_acted_on(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    m, t, f = clients["membership"], clients["transfer"], clients["feedback"]
    county = await org(m, "county")
    a, b = await org(m, "township", county), await org(m, "township", county)
    member_id = (await join(m, a))["member_id"]
    me = auth.bearer("member", member_id=member_id)

    async def known() -> bool:
        return (await t.get(f"/members/{member_id}/transfers")).status_code == 200

    await eventually(known)
    r = await t.post("/transfers", json={"member_id": member_id, "to_org_id": b, "reason": "new job"}, headers=me)
    assert r.status_code in {200, 201}, r.text
    transfer_id = r.json()["transfer_id"]
    r = await f.post("/requests", json={"category": "wages", "text": "工资拖欠"}, headers=me)
    assert r.status_code in {200, 201}, r.text
    request_id = r.json()["request_id"]

    async def both_wait_for_a() -> bool:
        return sorted(await waiting(m, a)) == [("request", "answer"), ("transfer", "release")]

    await eventually(both_wait_for_a)
    r = await t.post(f"/transfers/{transfer_id}/release", json={}, headers=auth.bearer("staff", org_id=a))
    assert r.status_code == 200, r.text
    r = await f.post(f"/requests/{request_id}/answer", json={"text": "已转交"}, headers=auth.bearer("staff", org_id=a))
    assert r.status_code == 200, r.text

    async def a_done_b_to_accept() -> bool:
        return await waiting(m, a) == [] and await waiting(m, b) == [("transfer", "accept")]

    await eventually(a_done_b_to_accept)
    r = await t.post(f"/transfers/{transfer_id}/accept", json={}, headers=auth.bearer("staff", org_id=b))
    assert r.status_code == 200, r.text

    async def nothing_waits() -> bool:
        return await waiting(m, b) == []

    await eventually(nothing_waits)
    overview: dict[str, Any] = (await m.get(f"/members/{member_id}/overview", headers=me)).json()
    assert overview["open_transfer"] is None
    assert overview["requests"][0]["answered"] is True
