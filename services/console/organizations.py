"""The organisation tree with member counts, and the statistics of an organisation and everything below it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console.web import ConsoleDep, UserDep, render, require, see_other

router = APIRouter(prefix="/staff")

STATUS = {"active": "正常", "suspended": "暂停", "terminated": "终止"}
HOUSEHOLD = {"urban": "城镇", "rural": "农村"}
EMPLOYMENT = {"regular": "劳动合同", "dispatched": "劳务派遣", "flexible": "灵活就业", "platform": "平台就业"}


def bars(counts: dict[str, int], names: dict[str, str]) -> list[tuple[str, int, int]]:
    """(label, count, width in % of the largest) for a bar chart drawn with CSS alone."""
    most = max(counts.values(), default=0) or 1
    return [(label, counts.get(key, 0), round(100 * counts.get(key, 0) / most)) for key, label in names.items()]


@router.get("/organization", response_class=HTMLResponse)
async def organization(request: Request, user: UserDep, app: ConsoleDep, org: str | None = None) -> Response:
    me = require(user, "staff", "admin")
    org_id = org or me.org_id
    if org_id is None:
        return see_other("/admin")
    found = await app.services.get("membership", f"/organizations/{org_id}", me.token)
    path = await app.services.get("membership", f"/organizations/{org_id}/path", me.token)
    children = await app.services.get("membership", f"/organizations/{org_id}/children", me.token)
    stats = await app.services.get("membership", f"/organizations/{org_id}/stats", me.token, subtree="true")
    counts: list[dict[str, Any]] = []
    for child in children["items"]:
        reply = await app.services.call("membership", "GET", f"/organizations/{child['org_id']}", me.token)
        counts.append({**child, "member_count": reply.body.get("member_count") if reply.ok else None})
    transfers = await app.services.call("transfer", "GET", f"/organizations/{org_id}/transfer-stats", me.token)
    return await render(
        request,
        "staff/organization.html",
        me,
        org=found,
        path=path["path"],
        children=counts,
        stats=stats,
        transfers=transfers.body if transfers.ok else None,
        charts=[
            ("会员状态", bars(stats["by_status"], STATUS)),
            ("户籍类型（在册会员）", bars(stats["by_household_type"], HOUSEHOLD)),
            ("用工形式（在册会员）", bars(stats["by_employment_type"], EMPLOYMENT)),
        ],
    )
