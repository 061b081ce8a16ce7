"""The one helper every route goes through: who asks, may they, and the command's idempotent transaction.

A route names its action and target and says what to run; `Call` checks the service's access table (auditing
as it decides), builds the event metadata from the verified token and the request's chain headers, and runs a
command in one transaction under its `Idempotency-Key`, answering with the position it wrote.

    @router.post("/cards/{card_no}/reissue")
    async def reissue_card(card_no: CardNo, body: ReasonIn, call: Call) -> JSONResponse:
        return await call.command(
            "card.reissue", access.card(call.pool, card_no),
            lambda conn, meta: call.service.servicecard.reissue(conn, card_no, body.reason, meta),
            answer=lambda new: {"card_no": new, "replaced": card_no},
        )
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

import asyncpg
from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from shared.auth import Principal, Role, Target
from shared.errors import InvalidInputError
from shared.idempotency import request_fingerprint, run_once
from shared.positions import POSITION_HEADER, Written, recording
from shared.service import Service
from shared.store import Metadata
from shared.telemetry import current_traceparent
from shared.web.auth import CurrentPrincipal

MAX_IDEMPOTENCY_KEY = 255
NO_TARGET = Target()  # an action on nothing in particular (a list, a service-wide read)

S = TypeVar("S", bound=Service)
T = TypeVar("T")
Command = Callable[[asyncpg.Connection, Metadata], Awaitable[Any]]
Query = Callable[[asyncpg.Connection], Awaitable[T]]


# a correlation or causation id a client sends: printable ASCII without spaces (it rides in Kafka headers)
_CHAIN_ID = re.compile(r"^[!-~]{1,128}$")


def _chain_id(request: Request, header: str) -> str | None:
    value = request.headers.get(header)
    if value is not None and not _CHAIN_ID.match(value):
        raise InvalidInputError(f"header.{header}", f"{header} is 1 to 128 printable ASCII characters, no spaces")
    return value


def request_metadata(request: Request, principal: Principal | None = None) -> Metadata:
    """Who asked (from the verified token, never from a header or body), and the ids that tie this command
    to what caused it and what it causes: the chain's correlation id (the client's `X-Correlation-Id`, else this
    request's id) and its cause (the client's `X-Causation-Id`, else this request). The answer names both ids."""
    request_id = str(uuid4())
    correlation_id = _chain_id(request, "x-correlation-id") or request_id
    causation_id = _chain_id(request, "x-causation-id") or request_id
    request.state.chain_headers = {"X-Request-Id": request_id, "X-Correlation-Id": correlation_id}
    return Metadata(
        actor=principal.actor if principal is not None else "public",
        correlation_id=correlation_id,
        causation_id=causation_id,
        traceparent=current_traceparent(),
    )


async def run_command(
    request: Request,
    pool: asyncpg.Pool,
    command: Callable[[asyncpg.Connection], Awaitable[Any]],
    status_code: int = 200,
) -> JSONResponse:
    """Run a command in one transaction; with an `Idempotency-Key`, a retry gets the first outcome back.

    Keys are the caller's own: the scope holds the token's actor, so nobody replays another caller's key."""

    written: Written | None = None

    async def outcome(conn: asyncpg.Connection) -> tuple[int, Any]:
        nonlocal written
        with recording() as written:
            body = jsonable_encoder(await command(conn))
        token = written.token()
        if token is not None and isinstance(body, dict):
            body.setdefault("position", str(token))  # kept with the idempotency key: a retry names it too
        return status_code, body

    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:  # the key is indexed, and PostgreSQL caps index rows
        raise InvalidInputError(
            "header.idempotency-key", f"an Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} characters"
        )
    # what a retry with the same key must match: only kept (so only worked out) for a request with a key
    fingerprint = request_fingerprint((await request.body()).decode(errors="replace")) if key is not None else ""
    principal: Principal | None = getattr(request.state, "principal", None)  # set by shared.auth.authenticate
    scope = f"{principal.actor if principal is not None else 'public'} {request.method} {request.url.path}"
    status, body = await run_once(pool, scope, key, fingerprint, outcome)
    headers = dict(getattr(request.state, "chain_headers", {}))
    token = written.token() if written is not None else None
    position = str(token) if token is not None else body.get("position") if isinstance(body, dict) else None
    if isinstance(position, str):
        headers[POSITION_HEADER] = position  # the position this command wrote: pass it to reads (`after=`)
    return JSONResponse(status_code=status, content=body, headers=headers)


class Call(Generic[S]):
    """One request as its route sees it: the service, the caller (None on a public route), and the ways to act."""

    def __init__(self, request: Request, service: S, principal: Principal | None) -> None:
        self.request = request
        self.service = service
        self.principal = principal

    @property
    def pool(self) -> asyncpg.Pool:
        return self.service.pool

    @property
    def caller(self) -> Principal:
        assert self.principal is not None, "a public route has no caller"
        return self.principal

    def metadata(self) -> Metadata:
        """The metadata of the events this request causes (shared.web.routes.request_metadata)."""
        return request_metadata(self.request, self.principal)

    def own_organization(self, org_id: UUID | None) -> UUID | None:
        """What a list means by no organisation: a staff member's own, anyone else's whole federation."""
        if org_id is None and self.principal is not None and self.principal.role is Role.STAFF:
            return self.principal.org_id
        return org_id

    async def allow(self, action: str, target: Target | Awaitable[Target] = NO_TARGET) -> Principal:
        """The service's access table decides (403 with a code, audited); `target` may still be looked up."""
        if inspect.isawaitable(target):
            target = await target
        return await self.service.guard.check(self.pool, self.caller, action, target)

    async def read(self, action: str, target: Target | Awaitable[Target], query: Query[T]) -> T:
        """Allowed, then `query` on a connection of the pool."""
        await self.allow(action, target)
        async with self.pool.acquire() as conn:
            return await query(conn)

    async def command(
        self,
        action: str | None,
        target: Target | Awaitable[Target],
        run: Command,
        *,
        answer: Callable[[Any], Any] | None = None,
        view: Callable[[asyncpg.Connection, Any], Awaitable[Any]] | None = None,
        status_code: int = 200,
    ) -> JSONResponse:
        """Allowed (unless `action` is None: a public command), then `run(conn, metadata)` in one idempotent
        transaction. The answer is what `run` returned, passed through `answer` (a plain function of it) or
        `view` (a read in the same transaction, given the connection and it) when either is given."""
        if action is not None:
            await self.allow(action, target)
        meta = self.metadata()

        async def once(conn: asyncpg.Connection) -> Any:
            outcome = await run(conn, meta)
            if view is not None:
                return await view(conn, outcome)
            return answer(outcome) if answer is not None else outcome

        return await run_command(self.request, self.pool, once, status_code)


async def _call(request: Request, principal: CurrentPrincipal) -> Call[Any]:
    return Call(request, request.app.state.service, principal)


async def _public_call(request: Request) -> Call[Any]:
    return Call(request, request.app.state.service, None)


# a route's parameter: `call: Call` with, in the service's api.py, `Call = Annotated[web.Call[MyService], CALL]`
CALL = Depends(_call)
PUBLIC_CALL = Depends(_public_call)  # routes open to anyone: no token, no access check
