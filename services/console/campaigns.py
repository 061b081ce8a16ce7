"""Evaluation campaigns: a member votes while one is open; its results, once closed with enough turnout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.web import ConsoleDep, Csrf, Id, UserDep, refusal, render, require

router = APIRouter(prefix="/campaigns")
SCORES = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}
REFUSED = {
    "already_voted": "您已投过票：每人一票，投出后不能更改。",
    "not_eligible": "您不在本次评议的投票范围内。",
    "campaign_closed": "本次评议已结束投票。",
    "campaign_not_open": "本次评议尚未开始投票。",
}


@router.get("/{campaign_id}", response_class=HTMLResponse)
async def campaign(request: Request, campaign_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "member", "staff", "admin")
    found = await app.services.get("feedback", f"/campaigns/{campaign_id}", me.token)
    return await render(request, "member/campaign.html", me, campaign=found, scores=SCORES)


@router.post("/{campaign_id}/ballots", dependencies=[Csrf])
async def vote(
    request: Request,
    campaign_id: Id,
    user: UserDep,
    app: ConsoleDep,
    score: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    me = require(user, "member")
    body = {"score": score, **({"comment": comment.strip()} if comment.strip() else {})}
    reply = await app.services.call("feedback", "POST", f"/campaigns/{campaign_id}/ballots", me.token, json=body)
    if reply.ok:
        message = "您的选票已匿名投入票箱：不记录投票人，也不出具可追溯的回执。"
        return await render(request, "message.html", me, title="已投票", message=message)
    if reply.code in REFUSED:
        return await render(request, "message.html", me, reply.status, title="未能投票", message=REFUSED[reply.code])
    return await refusal(request, reply, me)


@router.post("/{campaign_id}/close", dependencies=[Csrf])
async def close(request: Request, campaign_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "staff", "admin")
    reply = await app.services.call("feedback", "POST", f"/campaigns/{campaign_id}/close", me.token, json={})
    if not reply.ok:
        return await refusal(request, reply, me)
    return await results(request, campaign_id, user, app)


@router.get("/{campaign_id}/results", response_class=HTMLResponse)
async def results(request: Request, campaign_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "member", "staff", "admin")
    found = await app.services.get("feedback", f"/campaigns/{campaign_id}", me.token)
    reply = await app.services.call("feedback", "GET", f"/campaigns/{campaign_id}/results", me.token)
    if not reply.ok and reply.code not in {"turnout_too_low", "campaign_open"}:
        return await refusal(request, reply, me)
    shown = reply.body if reply.ok else None
    distribution = {int(k): int(v) for k, v in (shown or {}).get("distribution", {}).items()}
    most = max(distribution.values(), default=0) or 1
    return await render(
        request,
        "member/results.html",
        me,
        campaign=found,
        results=shown,
        withheld=reply.code,
        bars=[(s, SCORES[s], distribution.get(s, 0), round(100 * distribution.get(s, 0) / most)) for s in SCORES],
    )
