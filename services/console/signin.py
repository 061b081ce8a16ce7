"""Signing in and out: a role chosen on a development stack, or the bearer token an identity provider issued."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.session import read_claims
from services.console.web import ConsoleDep, Csrf, UserDep, render, see_other

router = APIRouter()


@router.get("/", include_in_schema=False)
async def home(user: UserDep) -> Response:
    if user is None:
        return see_other("/signin")
    return see_other({"member": "/me", "staff": "/staff/queue"}.get(user.role, "/admin"))


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, user: UserDep, app: ConsoleDep) -> HTMLResponse:
    organizations: list[dict[str, Any]] = []
    if app.issuer is not None:
        admin = app.issuer.mint("admin", name="console-signin")
        reply = await app.services.call("membership", "GET", "/organizations/search", admin, params={"limit": 200})
        organizations = reply.body.get("items", []) if reply.ok else []
    return await render(request, "signin.html", user, organizations=organizations, error=None)


@router.post("/signin", dependencies=[Csrf])
async def signin_dev(
    request: Request,
    app: ConsoleDep,
    role: Annotated[str, Form()],
    org_id: Annotated[str, Form()] = "",
    member_no: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    """Development only: sign a token for the chosen role, as `make token` does."""
    if app.issuer is None:
        return await render(request, "message.html", None, 404, title="未启用", message="本系统通过统一身份认证登录。")
    error = None
    member_id = None
    if role == "staff" and not _is_id(org_id):
        error = "请选择所在工会组织。"
    elif role == "member":
        admin = app.issuer.mint("admin", name="console-signin")
        reply = await app.services.call("membership", "POST", "/members/lookup", admin, json={"member_no": member_no})
        member_id = reply.body.get("member_id") if reply.ok else None
        error = None if member_id else "未找到该会员号。"
    elif role not in {"staff", "admin"}:
        error = "请选择身份。"
    if error:
        return await render(request, "signin.html", None, 422, organizations=[], error=error)
    token = app.issuer.mint(
        role,
        org_id=org_id if role == "staff" else None,
        member_id=str(member_id) if member_id else None,
        name=name.strip() or None,
    )
    response = see_other("/")
    app.sessions.sign_in(response, token)
    return response


@router.post("/signin/token", dependencies=[Csrf])
async def signin_token(request: Request, app: ConsoleDep, token: Annotated[str, Form()]) -> Response:
    """With a real identity provider: the bearer token it issued (the services verify it on every call)."""
    if read_claims(token.strip()) is None:
        return await render(request, "signin.html", None, 422, organizations=[], error="令牌无效或已过期。")
    response = see_other("/")
    app.sessions.sign_in(response, token.strip())
    return response


@router.post("/signout", dependencies=[Csrf])
async def signout(app: ConsoleDep) -> Response:
    response = see_other("/signin")
    app.sessions.sign_out(response)
    return response


def _is_id(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
