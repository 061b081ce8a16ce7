"""The work queue across services: a transfer asked for in the transfer service waits in membership's queue for the
side that must act, and leaves it once acted on; a request raised in feedback waits until it is answered."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from typer.testing import CliRunner

from devstack.platform import Platform
from tests.e2e.test_member_life import join, org
from tests.support import auth
from tests.support.data import NOTICES
from tests.support.waiting import eventually
from unionctl import cli


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

    async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        r = await client.post(path, json=body, headers=me)  # 404 until the service has heard of the member
        assert r.status_code in {201, 404}, r.text
        return dict(r.json()) if r.status_code == 201 else None

    transfer = {"member_id": member_id, "to_org_id": b, "reason": "new job"}
    transfer_id = (await eventually(lambda: created(t, "/transfers", transfer)))["transfer_id"]
    request = {"category": "wages", "text": "工资拖欠"}
    request_id = (await eventually(lambda: created(f, "/requests", request)))["request_id"]

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


async def test_an_operator_loads_next_years_notice_with_unionctl(
    platform: Platform, clients: dict[str, httpx.AsyncClient]
) -> None:
    """The README's three lines: check the file, load it with an admin's token; a second load changes nothing."""
    m = clients["membership"]
    notice = str(NOTICES / "2027.toml")
    env = {"MEMBERSHIP_URL": platform.url("membership"), "UNIONCTL_TOKEN": auth.token("admin", name="operator")}
    checked = await asyncio.to_thread(CliRunner().invoke, cli.app, ["calendar", "check", notice])
    assert checked.exit_code == 0, checked.output
    assert "does not know the year" in checked.output
    loaded = await asyncio.to_thread(CliRunner().invoke, cli.app, ["calendar", "load", notice], env=env)
    assert loaded.exit_code == 0, loaded.output
    assert "国办发明电〔2026〕99号（测试） loaded" in loaded.output
    year = (await m.get("/calendars/2027")).json()
    assert (year["provisional"], year["loaded_by"]) == (False, "admin:operator")
    again = await asyncio.to_thread(CliRunner().invoke, cli.app, ["calendar", "load", notice], env=env)
    assert "was loaded already" in again.output
    refused = await asyncio.to_thread(
        CliRunner().invoke, cli.app, ["calendar", "load", notice], env={**env, "UNIONCTL_TOKEN": ""}
    )
    assert (refused.exit_code, "refused (401" in refused.output) == (1, True)
