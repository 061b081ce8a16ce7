"""The composition root: settings -> HTTP client, sessions, the development issuer -> app (lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from services.console import campaigns, member, organizations, requests, signin, staff
from services.console.backend import ServiceRefusedError, Services
from services.console.devissuer import DevIssuer
from services.console.session import Sessions, current_user
from services.console.settings import ConsoleSettings
from services.console.web import HERE, Console, CsrfError, NotAllowedError, NotSignedInError, render, see_other


def build_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.service_timeout) as client:
            issuer = DevIssuer(settings.console_dev_issuer) if settings.console_dev_issuer else None
            sessions = Sessions(settings.console_secret, settings.console_cookie_secure)
            app.state.console = Console(Services(settings, client), sessions, issuer)
            yield

    app = FastAPI(title="console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (signin.router, staff.router, member.router, campaigns.router, organizations.router, requests.router):
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    async def admin(request: Request, org: str = "") -> Response:
        user = current_user(request)
        if user is None:
            return see_other("/signin")
        if org:
            return see_other(f"/staff/queue?org={org}")
        return await render(request, "admin.html", user)

    app.add_exception_handler(ServiceRefusedError, on_refused)
    app.add_exception_handler(NotSignedInError, on_signed_out)
    app.add_exception_handler(NotAllowedError, on_not_allowed)
    app.add_exception_handler(CsrfError, on_csrf)
    app.add_exception_handler(RequestValidationError, on_invalid)
    _document_pages(app)
    return app


_PAGE = {"text/html": {"schema": {"type": "string"}}}


def _document_pages(app: FastAPI) -> None:
    """The document (never served; the hostile-input tests read it) says what the console answers: pages, with a
    message page for any refusal, and redirects after a form."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        for item in document["paths"].values():
            for operation in item.values():
                operation["responses"] = {
                    "200": {"description": "the page", "content": _PAGE},
                    "303": {"description": "on to the next page, or to sign in"},
                    "4XX": {"description": "a page that says what was refused and why", "content": _PAGE},
                }
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# a refusal is a page that says so, never a crash
async def on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceRefusedError)
    user = current_user(request)
    status = exc.reply.status if 400 <= exc.reply.status < 600 else 502
    return await render(request, "message.html", user, status, title="无法显示", message=exc.reply.message)


async def on_signed_out(_: Request, __: Exception) -> Response:
    return see_other("/signin")


async def on_not_allowed(request: Request, _: Exception) -> Response:
    user = current_user(request)
    return await render(request, "message.html", user, 403, title="无权访问", message="此页面不对您的身份开放。")


async def on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    user = current_user(request)
    fields = "、".join(sorted({str(error["loc"][-1]) for error in exc.errors()}))
    return await render(request, "message.html", user, 422, title="填写有误", message=f"请检查：{fields}。")


async def on_csrf(request: Request, _: Exception) -> Response:
    user = current_user(request)
    message = "表单已失效（可能已重新登录），请返回刷新页面后重试。"
    return await render(request, "message.html", user, 403, title="表单已失效", message=message)
