"""Members' requests: a member raises one; the organisation's staff answer it, once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.web import ConsoleDep, Csrf, Id, UserDep, refusal, render, require, see_other

router = APIRouter()
CATEGORIES = {
    "wages": "工资报酬",
    "safety": "劳动安全",
    "hours": "工作时间与休假",
    "contract": "劳动合同",
    "insurance": "社会保险",
    "other": "其他",
}


@router.get("/staff/requests", response_class=HTMLResponse)
async def received(request: Request, user: UserDep, app: ConsoleDep, org: str | None = None) -> Response:
    me = require(user, "staff", "admin")
    org_id = org or me.org_id
    if org_id is None:
        return see_other("/admin")
    found = await app.services.get("feedback", f"/organizations/{org_id}/requests", me.token)
    items = sorted(found["items"], key=lambda r: (r["status"] != "open", r["raised_at"]))
    return await render(request, "staff/requests.html", me, items=items, categories=CATEGORIES)


@router.post("/staff/requests/{request_id}/answer", dependencies=[Csrf])
async def answer(
    request: Request, request_id: Id, user: UserDep, app: ConsoleDep, text: Annotated[str, Form()] = ""
) -> Response:
    me = require(user, "staff", "admin")
    if not text.strip():
        return await render(request, "message.html", me, 422, title="未答复", message="答复内容不能为空。")
    reply = await app.services.call(
        "feedback", "POST", f"/requests/{request_id}/answer", me.token, json={"text": text.strip()}
    )
    if not reply.ok:
        return await refusal(request, reply, me)
    return await render(request, "message.html", me, title="已答复", message="答复已送达会员。", link="/staff/requests")


@router.get("/me/requests", response_class=HTMLResponse)
async def mine(request: Request, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "member")
    view = await app.services.get("membership", f"/members/{me.member_id}/overview", me.token)
    return await render(
        request, "member/requests.html", me, requests=view.get("requests", []), categories=CATEGORIES, errors={}
    )


@router.post("/me/requests", dependencies=[Csrf])
async def raise_request(
    request: Request,
    user: UserDep,
    app: ConsoleDep,
    category: Annotated[str, Form()] = "other",
    text: Annotated[str, Form()] = "",
) -> Response:
    me = require(user, "member")
    reply = await app.services.call(
        "feedback", "POST", "/requests", me.token, json={"category": category, "text": text.strip()}
    )
    if reply.ok:
        message = "您的诉求已提交给所在工会，将在规定的工作日内答复。"
        return await render(request, "message.html", me, title="已提交", message=message, link="/me/requests")
    if reply.status != 422:
        return await refusal(request, reply, me)
    view = await app.services.get("membership", f"/members/{me.member_id}/overview", me.token)
    return await render(
        request,
        "member/requests.html",
        me,
        422,
        requests=view.get("requests", []),
        categories=CATEGORIES,
        errors=reply.field_errors(),
        text=text,
    )
