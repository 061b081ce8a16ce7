"""What every page shares: the templates, who is signed in and for which organisation, CSRF, refusals as messages."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console.backend import Reply, Services
from services.console.devissuer import DevIssuer
from services.console.session import SESSION_COOKIE, Sessions, User, current_user

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["kind_name"] = lambda k: {
    "application": "入会申请",
    "transfer": "会籍转移",
    "request": "会员诉求",
}.get(k, k)
CST = timezone(timedelta(hours=8))  # China keeps one offset all year


def _local(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)).astimezone(CST) if value else None
    except ValueError:
        return None


def when(value: object) -> str:
    local = _local(value)
    return local.strftime("%Y-%m-%d %H:%M") if local else str(value or "")


def day(value: object) -> str:
    local = _local(value)
    return local.strftime("%Y-%m-%d") if local else str(value or "")


EVENT_NAMES = {
    "ApplicationSubmitted": "提交入会申请",
    "ApplicationApproved": "批准入会",
    "ApplicationRejected": "驳回入会申请",
    "ApplicationOverdue": "入会申请逾期",
    "DeadlineRecounted": "办理期限按新公布的放假安排重新计算",
    "MemberJoined": "成为会员",
    "MemberSuspended": "暂停会籍",
    "MemberReinstated": "恢复会籍",
    "MemberTerminated": "终止会籍",
    "MemberOrganizationChanged": "所在组织变更",
    "CardIssued": "发放服务卡",
    "CardOrganizationChanged": "服务卡随会籍转移",
    "CardReissued": "补发服务卡",
    "BenefitRedeemed": "使用服务",
    "TransferRequested": "申请会籍转移",
    "TransferReleased": "同意转出",
    "TransferCompleted": "会籍转移完成",
    "TransferRejected": "拒绝会籍转移",
    "TransferCancelled": "撤销会籍转移",
    "RequestRaised": "提出诉求",
    "RequestAnswered": "答复诉求",
    "DuesAccountOpened": "开立会费账户",
    "DuesAssessed": "核定会费",
    "DuesPaid": "缴纳会费",
    "DuesExempted": "免缴会费",
    "MembershipRetained": "保留会籍",
    "MembershipLapsed": "会籍失效",
    "MembershipRestored": "恢复会籍",
}


def calendar_note(item: dict[str, object]) -> str:
    """What a working-day deadline was counted on, in words: each year's notice, or 暂按法定节假日 where provisional."""
    clock = item.get("clock")
    if not isinstance(clock, dict):
        return ""
    parts = []
    for year in clock.get("counted_on", []):
        if year.get("notice"):
            parts.append(f"{year['year']}年按{year['notice']}")
        elif year.get("published_after"):
            parts.append(f"{year['year']}年按法定节假日计算（期限届满后才公布{year['published_after']}，不再重算）")
        else:
            parts.append(f"{year['year']}年放假安排未公布，暂按法定节假日计算，公布后重新计算")
    return "；".join(parts)


templates.env.filters["when"] = when
templates.env.filters["day"] = day
templates.env.filters["calendar_note"] = calendar_note
templates.env.filters["event_name"] = lambda e: EVENT_NAMES.get(str(e), e)

STATUS_NAMES = {
    "submitted": "待审核",
    "approved": "已批准",
    "rejected": "已驳回",
    "active": "正常",
    "suspended": "暂停",
    "terminated": "终止",
    "requested": "待转出",
    "released": "待转入",
    "completed": "已完成",
    "cancelled": "已撤销",
    "expired": "已过期",
    "frozen": "冻结",
    "revoked": "作废",
    "upcoming": "未开始",
    "open": "投票中",
    "closed": "已结束",
}
templates.env.filters["status_name"] = lambda s: STATUS_NAMES.get(str(s), s)


class Console:
    """The console's parts, made in the lifespan and kept on the app."""

    def __init__(self, services: Services, sessions: Sessions, issuer: DevIssuer | None) -> None:
        self.services = services
        self.sessions = sessions
        self.issuer = issuer
        self.org_names: dict[str, str] = {}

    async def org_name(self, org_id: str | None, token: str | None) -> str | None:
        if not org_id:
            return None
        if org_id not in self.org_names:
            reply = await self.services.call("membership", "GET", f"/organizations/{org_id}", token)
            if not reply.ok:
                return None
            self.org_names[org_id] = str(reply.body.get("name", org_id))
        return self.org_names[org_id]


def console(request: Request) -> Console:
    app_console: Console = request.app.state.console
    return app_console


ConsoleDep = Annotated[Console, Depends(console)]
# an id in a page's path: a UUID, as the services' ids are; anything else is refused here, never put into their paths
Id = Annotated[str, PathParam(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
UserDep = Annotated[User | None, Depends(current_user)]


class NotAllowedError(Exception):
    """A page this role has no business on: said plainly (the services would refuse anyway)."""


def require(user: User | None, *roles: str) -> User:
    if user is None:
        raise NotSignedInError
    if user.role not in roles:
        raise NotAllowedError
    return user


class NotSignedInError(Exception):
    pass


async def render(
    request: Request, name: str, user: User | None = None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    app_console = console(request)
    session_id = request.cookies.get(SESSION_COOKIE) or getattr(request.state, "session_id", None)
    fresh = session_id is None
    if session_id is None:
        session_id = secrets.token_urlsafe(24)
    org_id = user.org_id if user else None
    member: dict[str, Any] | None = None
    if user is not None and user.role == "member" and user.member_id:
        reply = await app_console.services.call("membership", "GET", f"/members/{user.member_id}", user.token)
        member = reply.body if reply.ok else None
        org_id = member.get("org_id") if member else None
    response = templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "me": member,
            "org_name": await app_console.org_name(org_id, user.token if user else None),
            "csrf": app_console.sessions.csrf(session_id),
            "dev_signin": app_console.issuer is not None,
            **context,
        },
        status_code=status_code,
    )
    if fresh:
        response.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=app_console.sessions.secure, path="/"
        )
    return response


async def refusal(request: Request, reply: Reply, user: User | None) -> HTMLResponse:
    status = reply.status if 400 <= reply.status < 600 else 502
    return await render(request, "message.html", user, status_code=status, title="无法完成", message=reply.message)


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


class CsrfError(Exception):
    """A POST without this session's CSRF token: from another site, or a form from before a sign-in."""


async def require_csrf(
    request: Request, csrf: Annotated[str, Form(max_length=64, description="the CSRF token of the page's form")] = ""
) -> None:
    if not console(request).sessions.csrf_valid(request, csrf or None):
        raise CsrfError


Csrf = Depends(require_csrf)
