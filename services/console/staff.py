"""The union office: the work queue, an application's review, finding a member and their dossier, transfers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.backend import ServiceRefusedError
from services.console.session import User
from services.console.web import ConsoleDep, Csrf, Id, UserDep, refusal, render, require, see_other

router = APIRouter(prefix="/staff")
STAFF = ("staff", "admin")


def _org(user: User, org: str | None) -> str | None:
    """The organisation the page is about: the staff's own unless another (one below it) is named."""
    return org or user.org_id


@router.get("/queue", response_class=HTMLResponse)
async def queue(
    request: Request, user: UserDep, app: ConsoleDep, org: str | None = None, kind: str | None = None
) -> Response:
    me = require(user, *STAFF)
    org_id = _org(me, org)
    if org_id is None:
        return see_other("/admin")
    page = await app.services.get(
        "membership", f"/organizations/{org_id}/queue", me.token, subtree="true", limit=100, kind=kind or None
    )
    return await render(
        request, "staff/queue.html", me, items=page["items"], as_of=page.get("as_of"), org_id=org_id, kind=kind
    )


async def _application(app: Any, me: User, application_id: str, org_id: str) -> dict[str, Any] | None:
    """The application as the queue shows it (masked), or None once it has left the queue."""
    page = await app.services.get(
        "membership", f"/organizations/{org_id}/queue", me.token, subtree="true", kind="application", limit=200
    )
    return next((i for i in page["items"] if str(i["id"]) == application_id), None)


@router.get("/applications/{application_id}", response_class=HTMLResponse)
async def application(
    request: Request, application_id: Id, user: UserDep, app: ConsoleDep, org: str | None = None
) -> Response:
    me = require(user, *STAFF)
    org_id = _org(me, org)
    status = await app.services.get("membership", f"/applications/{application_id}", me.token)
    item = await _application(app, me, application_id, org_id) if org_id else None
    return await render(
        request, "staff/application.html", me, application_id=application_id, status=status, item=item, org_id=org_id
    )


@router.post("/applications/{application_id}/approve", dependencies=[Csrf])
async def approve(request: Request, application_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, *STAFF)
    reply = await app.services.call("membership", "POST", f"/applications/{application_id}/approve", me.token, json={})
    if not reply.ok:
        return await refusal(request, reply, me)
    return await render(
        request,
        "message.html",
        me,
        title="已批准入会",
        message=f"会员号 {reply.body['member_no']}。服务卡将自动发放。",
        link=f"/staff/members/{reply.body['member_id']}",
        link_text="查看会员档案",
    )


@router.post("/applications/{application_id}/reject", dependencies=[Csrf])
async def reject(
    request: Request, application_id: Id, user: UserDep, app: ConsoleDep, reason: Annotated[str, Form()] = ""
) -> Response:
    me = require(user, *STAFF)
    if not reason.strip():
        status = await app.services.get("membership", f"/applications/{application_id}", me.token)
        item = await _application(app, me, application_id, me.org_id) if me.org_id else None
        return await render(
            request,
            "staff/application.html",
            me,
            422,
            application_id=application_id,
            status=status,
            item=item,
            org_id=me.org_id,
            reason_error="驳回须写明理由。",
        )
    body = {"reason": reason.strip()}
    reply = await app.services.call("membership", "POST", f"/applications/{application_id}/reject", me.token, json=body)
    if not reply.ok:
        return await refusal(request, reply, me)
    return await render(request, "message.html", me, title="已驳回申请", message=f"理由：{reason.strip()}")


@router.get("/members", response_class=HTMLResponse)
async def lookup_page(request: Request, user: UserDep) -> Response:
    return await render(request, "staff/lookup.html", require(user, *STAFF), error=None)


@router.post("/members/lookup", dependencies=[Csrf])
async def lookup(
    request: Request,
    user: UserDep,
    app: ConsoleDep,
    id_number: Annotated[str, Form()] = "",
    member_no: Annotated[str, Form()] = "",
) -> Response:
    me = require(user, *STAFF)
    body = {"id_number": id_number.strip()} if id_number.strip() else {"member_no": member_no.strip()}
    reply = await app.services.call("membership", "POST", "/members/lookup", me.token, json=body)
    if reply.ok:
        return see_other(f"/staff/members/{reply.body['member_id']}")
    error = "在您的组织范围内未找到该会员。" if reply.status in {403, 404} else reply.message
    fields = reply.field_errors() if reply.status == 422 else {}
    return await render(request, "staff/lookup.html", me, 422 if fields else 404, error=error, fields=fields)


@router.get("/members/{member_id}", response_class=HTMLResponse)
async def dossier(request: Request, member_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, *STAFF)
    overview = await app.services.get("membership", f"/members/{member_id}/overview", me.token)
    return await render(request, "staff/dossier.html", me, overview=overview, member=overview["member"])


@router.get("/transfers", response_class=HTMLResponse)
async def transfers(request: Request, user: UserDep, app: ConsoleDep, org: str | None = None) -> Response:
    me = require(user, *STAFF)
    org_id = _org(me, org)
    if org_id is None:
        return see_other("/admin")
    path = f"/organizations/{org_id}/transfers"
    out = await app.services.get("transfer", path, me.token, direction="out", status="requested")
    into = await app.services.get("transfer", path, me.token, direction="in", status="released")
    return await render(request, "staff/transfers.html", me, releasing=out["items"], accepting=into["items"])


async def _step(request: Request, verb: str, transfer_id: str, user: User | None, app: Any) -> Response:
    me = require(user, *STAFF)
    reply = await app.services.call("transfer", "POST", f"/transfers/{transfer_id}/{verb}", me.token, json={})
    if not reply.ok:
        return await refusal(request, reply, me)
    done = {"release": "已同意转出，等待转入方接收。", "accept": "已接收转入，转移完成。"}[verb]
    return await render(request, "message.html", me, title="已办理", message=done, link="/staff/transfers")


@router.post("/transfers/{transfer_id}/release", dependencies=[Csrf])
async def release(request: Request, transfer_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    return await _step(request, "release", transfer_id, user, app)


@router.post("/transfers/{transfer_id}/accept", dependencies=[Csrf])
async def accept(request: Request, transfer_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    return await _step(request, "accept", transfer_id, user, app)


__all__ = ["ServiceRefusedError", "router"]
