"""The FastAPI app factory: health, readiness, and the one place where errors become HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import context, propagate
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import TokenVerifier
from shared.database import DATABASE_UNAVAILABLE
from shared.errors import DomainError, InvalidInputError
from shared.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH
from shared.messaging import BROKER_UNAVAILABLE
from shared.service import Service
from shared.telemetry import exporting, setup_telemetry
from shared.web.guards import RequestGuard, refuse_nul_characters
from shared.web.links import document_links

log = logging.getLogger("shared.web.app")

MAX_IDEMPOTENCY_KEY = 255
RETRY_AFTER_SECONDS = 2  # `make run` has a dead server back in about that


class TraceContext:
    """ASGI middleware: the caller's `traceparent` (and `tracestate`) made the request's context, so the events it
    causes carry the caller's trace on. That is all the OpenTelemetry server middleware achieves when spans and
    metrics go nowhere, without its span and attribute work per request (6% of a redemption's CPU, measured)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {}
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name in {b"traceparent", b"tracestate"}:
                    carrier[name.decode()] = value.decode("latin-1")
        if "traceparent" not in carrier:
            await self.app(scope, receive, send)
            return
        token = context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"] or ["body"]
    return ".".join(parts)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors():
        reason = str(err.get("msg", "invalid"))
        reason = reason.removeprefix("Value error, ")
        errors.append({"field": _field(err.get("loc", ())), "reason": reason})
    return errors


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    return JSONResponse(
        status_code=422,
        content={
            "code": "invalid_input",
            "errors": errors,
            "detail": errors[0]["reason"] if errors else "invalid input",
        },
    )


# what `_on_validation` (and an InvalidInputError) answers, published in place of FastAPI's {detail: [...]}
_INVALID_INPUT = {
    "title": "InvalidInput",
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "examples": ["invalid_input", "invalid_cursor", "idempotency_key_reused"]},
        "detail": {"type": "string"},
        "errors": {
            "description": "the fields at fault, with the reason for each (when the fault is in a field)",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


def _document_invalid_input(app: FastAPI) -> None:
    """The OpenAPI document describes the 422 body this app really sends."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = _INVALID_INPUT
            schemas.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    body: dict[str, Any] = {"code": exc.code, "detail": exc.message}
    if isinstance(exc, InvalidInputError):
        body["errors"] = [{"field": field, "reason": reason} for field, reason in exc.errors]
    return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "http_error")
    return JSONResponse(
        status_code=exc.status_code, content={"code": code, "detail": exc.detail}, headers=getattr(exc, "headers", None)
    )


_UNAVAILABLE = {
    "description": "The database (`database_unavailable`) or the broker (`broker_unavailable`) cannot be reached "
    "right now; nothing was done. Try again after `Retry-After` seconds.",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    "content": {
        "application/json": {
            "schema": {
                "title": "Unavailable",
                "type": "object",
                "required": ["code", "detail"],
                "properties": {
                    "code": {"type": "string", "enum": ["database_unavailable", "broker_unavailable"]},
                    "detail": {"type": "string"},
                },
            }
        }
    },
}


def _unavailable(code: str, what: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A 503 the client may retry, never a plain-text 500: the request did not reach the point of no return
    (a command's transaction did not commit) or, if it did, its `Idempotency-Key` answers the retry."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "%s unreachable: %s %s answered 503", what, request.method, request.url.path, extra={"error": repr(exc)}
        )
        return JSONResponse(
            status_code=503,
            content={"code": code, "detail": f"the {what} cannot be reached right now; try again shortly"},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler


def create_app(service: Service, routers: Sequence[APIRouter]) -> FastAPI:
    """The service's HTTP app: its routers behind the kernel's guards, error answers, health and readiness; the
    lifespan starts and stops the service's running parts."""
    title = service.name

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        app.state.service = service  # every route reaches it through shared.web.routes
        app.state.watermarks = service.runtime.watermarks  # reads with position tokens wait on it
        yield
        await service.stop()

    setup_telemetry(title)
    app = FastAPI(title=title, lifespan=lifespan, responses={503: _UNAVAILABLE})
    _document_invalid_input(app)
    app.router.dependencies.append(Depends(refuse_nul_characters))  # every route added from here on
    app.add_middleware(RequestGuard, max_body_bytes=MAX_BODY_BYTES, max_json_depth=MAX_JSON_DEPTH)
    app.state.verifier = TokenVerifier.from_settings(
        service.settings
    )  # every route but health and the public ones depends on shared.auth.authenticate
    if exporting():  # a server span per request: the trace that the append, the relay and consumers continue
        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    else:  # nothing to export: only the caller's trace context, passed on to the events
        app.add_middleware(TraceContext)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _unavailable("database_unavailable", "database"))
    for error in BROKER_UNAVAILABLE:
        app.add_exception_handler(error, _unavailable("broker_unavailable", "broker"))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Ready: the database answers, the relay reaches the broker, the consumers hold their partitions and have
        caught up with what those held at start, the background loops run; else 503 listing what is not. Either
        way, what this replica does (whether it relays, which consumed partitions it holds) and how far behind the
        flow is (`relay_behind`: log positions not yet published, while it relays; `consumer_lag`: messages not yet
        handled on its partitions, per topic)."""
        missing = [m for m in await asyncio.gather(*(check() for check in service.ready_checks())) if m is not None]
        status = 200 if not missing else 503
        content = {
            "status": "ready" if not missing else "not_ready",
            "missing": missing,
            **service.runtime.roles(),
            **await service.runtime.flow(),
        }
        return JSONResponse(status_code=status, content=content)

    for router in routers:
        app.include_router(router)
    document_links(app, routers)  # what each router declared with shared.web.links.declare
    return app
