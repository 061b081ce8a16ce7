"""The member's side: applying (public), where to join (public), my overview and timeline, my card as a QR code."""

from __future__ import annotations

from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.web import ConsoleDep, Csrf, Id, UserDep, refusal, render, require

router = APIRouter()

EMPLOYMENT = {
    "regular": "劳动合同",
    "dispatched": "劳务派遣",
    "flexible": "灵活就业",
    "platform": "平台就业（新就业形态）",
}
HOUSEHOLD = {"urban": "城镇", "rural": "农村"}
FIELDS = ("org_id", "name", "id_number", "phone", "employer_name", "employer_credit_code")


@router.get("/apply", response_class=HTMLResponse)
async def apply_page(request: Request, user: UserDep, org: str = "") -> Response:
    return await render(
        request,
        "member/apply.html",
        user,
        values={"org_id": org},
        errors={},
        employment=EMPLOYMENT,
        household=HOUSEHOLD,
    )


@router.post("/apply", dependencies=[Csrf])
async def apply(
    request: Request,
    user: UserDep,
    app: ConsoleDep,
    org_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    id_number: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    employer_name: Annotated[str, Form()] = "",
    employer_credit_code: Annotated[str, Form()] = "",
    employment_type: Annotated[str, Form()] = "regular",
    household_type: Annotated[str, Form()] = "urban",
) -> Response:
    """The public application form: the service checks every field; its 422 reasons are shown beside the fields."""
    values: dict[str, Any] = {
        "org_id": org_id.strip(),
        "name": name.strip(),
        "id_number": id_number.strip(),
        "phone": phone.strip(),
        "employer_name": employer_name.strip() or None,
        "employer_credit_code": employer_credit_code.strip() or None,
        "employment_type": employment_type,
        "household_type": household_type,
    }
    body = {k: v for k, v in values.items() if v is not None}
    reply = await app.services.call("membership", "POST", "/applications", None, json=body)
    if reply.ok:
        return await render(
            request,
            "message.html",
            user,
            title="申请已提交",
            message=f"申请编号 {reply.body['application_id']}。工会将在规定的工作日内审核。",
            link=f"/apply/{reply.body['application_id']}",
            link_text="查看审核进度",
        )
    errors = reply.field_errors() if reply.status == 422 else {}
    general = None if errors else reply.message
    if reply.code == "already_member":
        general = "您已是工会会员，无需重复申请。"
    return await render(
        request,
        "member/apply.html",
        user,
        reply.status,
        values=values,
        errors=errors,
        general=general,
        employment=EMPLOYMENT,
        household=HOUSEHOLD,
    )


@router.get("/apply/{application_id}", response_class=HTMLResponse)
async def application_status(request: Request, application_id: Id, user: UserDep, app: ConsoleDep) -> Response:
    status = await app.services.get("membership", f"/applications/{application_id}", None)
    return await render(request, "member/application.html", user, application_id=application_id, status=status)


@router.get("/where-to-join", response_class=HTMLResponse)
async def where_to_join(
    request: Request,
    user: UserDep,
    app: ConsoleDep,
    region_code: str = "",
    employer_name: str = "",
    credit_code: str = "",
) -> Response:
    found: list[dict[str, Any]] | None = None
    errors: dict[str, str] = {}
    general = None
    if region_code:
        params = {
            "region_code": region_code,
            "employer_name": employer_name or None,
            "credit_code": credit_code or None,
        }
        reply = await app.services.call(
            "membership", "GET", "/where-to-join", None, params={k: v for k, v in params.items() if v}
        )
        if reply.ok:
            recommended = reply.body.get("recommended")
            found = ([recommended] if recommended else []) + list(reply.body.get("also_covering", []))
        elif reply.status == 422:
            errors = reply.field_errors()
        else:
            general = reply.message
    query = {"region_code": region_code, "employer_name": employer_name, "credit_code": credit_code}
    return await render(request, "member/where.html", user, found=found, query=query, errors=errors, general=general)


@router.get("/me", response_class=HTMLResponse)
async def overview(request: Request, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "member")
    view = await app.services.get("membership", f"/members/{me.member_id}/overview", me.token)
    return await render(request, "member/overview.html", me, view=view)


@router.get("/me/card", response_class=HTMLResponse)
async def card(request: Request, user: UserDep, app: ConsoleDep) -> Response:
    me = require(user, "member")
    reply = await app.services.call("servicecard", "GET", f"/members/{me.member_id}/card", me.token)
    qr = None
    if reply.ok:
        qr = segno.make(str(reply.body["card_no"]), error="m").svg_inline(scale=5, title="服务卡二维码")
    return await render(request, "member/card.html", me, card=reply.body if reply.ok else None, qr=qr)


@router.get("/me/transfer", response_class=HTMLResponse)
async def transfer_page(request: Request, user: UserDep, app: ConsoleDep, q: str = "") -> Response:
    me = require(user, "member")
    view = await app.services.get("membership", f"/members/{me.member_id}/overview", me.token)
    found: list[dict[str, Any]] = []
    if q.strip():
        reply = await app.services.call(
            "membership", "GET", "/organizations/search", me.token, params={"q": q.strip(), "accepts_members": "true"}
        )
        found = reply.body.get("items", []) if reply.ok else []
    return await render(request, "member/transfer.html", me, view=view, found=found, q=q, error=None)


@router.post("/me/transfer", dependencies=[Csrf])
async def request_transfer(
    request: Request,
    user: UserDep,
    app: ConsoleDep,
    to_org_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    me = require(user, "member")
    body = {"member_id": me.member_id, "to_org_id": to_org_id, "reason": reason.strip() or "工作变动"}
    reply = await app.services.call("transfer", "POST", "/transfers", me.token, json=body)
    if reply.ok:
        message = "转移申请已提交：先由现所在工会同意转出，再由新工会接收。"
        return await render(request, "message.html", me, title="已申请转移", message=message, link="/me")
    known = {
        "transfer_open": "您已有一项办理中的会籍转移。",
        "member_not_active": "会籍状态不正常，暂不能转移。",
        "target_not_accepting": "该工会暂不接收会员。",
    }
    if reply.code in known:
        return await render(request, "message.html", me, reply.status, title="未能申请", message=known[reply.code])
    return await refusal(request, reply, me)
