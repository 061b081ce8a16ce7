"""The console's sessions without a browser: cookies HttpOnly and SameSite=Strict, every POST needs this session's
CSRF token (renewed at sign-in), and a page is offered only to the roles it is for. No service is needed here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack.tokens import Issuer
from services.console.main import build_app
from services.console.settings import ConsoleSettings


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    Issuer.open(tmp_path)
    app = build_app(ConsoleSettings(membership_url="http://127.0.0.1:9", console_dev_issuer=tmp_path))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as client,
    ):
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


async def test_cookies_are_httponly_strict_and_every_post_needs_the_sessions_csrf_token(
    console: httpx.AsyncClient,
) -> None:
    page = await console.get("/signin")
    assert page.status_code == 200
    assert re.search(r"console_sid=[^;]+;.*HttpOnly.*SameSite=strict", page.headers["set-cookie"], re.IGNORECASE)
    assert (await console.post("/signin", data={"role": "admin"})).status_code == 403  # no token
    forged = await console.post("/signin", data={"role": "admin", "csrf": "0" * 64})
    assert forged.status_code == 403
    before = csrf(page.text)
    signed = await console.post("/signin", data={"role": "admin", "csrf": before, "name": "王主任"})
    assert signed.status_code == 303
    token_cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("console_token="))
    assert re.search(r"HttpOnly", token_cookie, re.IGNORECASE)
    assert re.search(r"SameSite=strict", token_cookie, re.IGNORECASE)
    admin = await console.get("/admin")
    assert "王主任 · 管理员" in admin.text
    stale = await console.post("/signout", data={"csrf": before})  # the form from before signing in
    assert stale.status_code == 403
    assert (await console.post("/signout", data={"csrf": csrf(admin.text)})).status_code == 303


async def test_pages_are_offered_to_their_roles_only(console: httpx.AsyncClient, tmp_path: Path) -> None:
    assert (await console.get("/me")).headers["location"] == "/signin"
    member = Issuer.open(tmp_path).mint("member", member_id="6f1c2f2e-8a4c-4a53-9a1e-0b1f6b2f9c11")
    page = await console.get("/signin")
    await console.post("/signin/token", data={"token": member, "csrf": csrf(page.text)})
    refused = await console.get("/staff/queue")
    assert refused.status_code == 403
    assert "此页面不对您的身份开放" in refused.text
    assert "待办事项" not in refused.text  # the staff's menu is not offered to a member
