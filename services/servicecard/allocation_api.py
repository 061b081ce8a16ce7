"""Allocation routes (抽签、限额): request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.servicecard import access, allocations
from services.servicecard.service import ServicecardService
from shared.auth import organization
from shared.errors import InvalidInputError
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.params import Period
from shared.web.routes import NO_TARGET

router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)], tags=["allocations"])
Call = Annotated[routes.Call[ServicecardService], routes.CALL]
CST = timezone(timedelta(hours=8))


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AllocationIn(Body):
    item_id: UUID
    org_id: UUID = Field(description="members of this organisation and below may enter")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    mode: allocations.Mode
    places: Annotated[int, Field(ge=1, le=1_000_000)]
    period: Period | None = Field(None, description="the limit's period; default: the day entries close")
    limit_per_member: Annotated[int, Field(ge=1, le=1000)] = 1
    entries_close_at: AwareDatetime
    entitlement_days: Annotated[int, Field(ge=1, le=3660)] = 7
    no_show_ban_days: Annotated[int, Field(ge=0, le=3660)] = 90


class EntryIn(Body):
    member_id: UUID | None = Field(None, description="the entering member: the token's member by default")


@router.post("/allocations", status_code=201)
async def open_allocation(body: AllocationIn, call: Call) -> JSONResponse:
    """Open an allocation of a catalogue item; a draw publishes its seed's SHA-256 now and reveals the seed after."""
    period = body.period or body.entries_close_at.astimezone(CST).date().isoformat()
    cmd = allocations.OpenAllocation(
        uuid4(),
        body.item_id,
        body.org_id,
        body.title,
        body.mode,
        body.places,
        period,
        body.limit_per_member,
        body.entries_close_at,
        body.entitlement_days,
        body.no_show_ban_days,
    )
    return await call.command(
        "allocation.open",
        organization(body.org_id),
        lambda conn, meta: call.service.allocations.open(conn, cmd, meta),
        answer=lambda committed: {
            "allocation_id": cmd.allocation_id,
            "seed_commitment": committed,
            "period": period,
        },
        status_code=201,
    )


@router.get("/allocations/{allocation_id}")
async def get_allocation(allocation_id: UUID, call: Call) -> dict[str, Any]:
    """The published allocation: a draw's commitment, and once drawn its seed, entries and winners to re-run it."""
    return await call.read(
        "allocation.read", NO_TARGET, lambda conn: call.service.allocations.view(conn, allocation_id)
    )


@router.post("/allocations/{allocation_id}/entries", status_code=201)
async def enter(allocation_id: UUID, body: EntryIn, call: Call) -> JSONResponse:
    """Enter an allocation: a draw's entry, or at once a first-come place (409 `allocation_full` when none is left)."""
    member_id = body.member_id or call.caller.member_id
    if member_id is None:
        raise InvalidInputError("member_id", "name the member who enters")
    return await call.command(
        "allocation.enter",
        access.member(call.pool, member_id),
        lambda conn, meta: call.service.allocations.enter(conn, allocation_id, member_id, meta),
        answer=lambda entitlement_id: {
            "allocation_id": allocation_id,
            "member_id": member_id,
            "status": "entered" if entitlement_id is None else "allocated",
            "entitlement_id": entitlement_id,
        },
        status_code=201,
    )


@router.post("/allocations/{allocation_id}/draw")
async def hold_draw(allocation_id: UUID, call: Call) -> JSONResponse:
    """Hold the draw once entries closed (the sweeper does it by itself); once held, the same winners again."""
    return await call.command(
        "allocation.draw",
        access.allocation(call.pool, allocation_id),
        lambda conn, meta: call.service.allocations.draw(conn, allocation_id, meta),
        answer=lambda winners: {"allocation_id": allocation_id, "winners": winners},
    )


@router.get("/members/{member_id}/entitlements")
async def get_entitlements(member_id: UUID, call: Call) -> dict[str, Any]:
    """The member's entitlements (wins) with their expiry and status, and the bans no-shows earned."""
    return await call.read(
        "entitlement.read",
        access.member(call.pool, member_id),
        lambda conn: call.service.allocations.member_entitlements(conn, member_id),
    )


@router.post("/entitlements/{entitlement_id}/use")
async def use_entitlement(entitlement_id: UUID, call: Call) -> JSONResponse:
    """Spend an entitlement before it expires (the provider's or the organisation's staff)."""
    return await call.command(
        "entitlement.use",
        access.entitlement(call.pool, entitlement_id),
        lambda conn, meta: call.service.allocations.use(conn, entitlement_id, meta),
        answer=lambda used: {"entitlement_id": used, "status": "used"},
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /allocations",
        "allocation_id",
        "GET /allocations/{allocation_id}",
        "POST /allocations/{allocation_id}/entries",
        "POST /allocations/{allocation_id}/draw",
    ),
    Link("POST /allocations/{allocation_id}/entries", "entitlement_id", "POST /entitlements/{entitlement_id}/use"),
    Link("POST /allocations/{allocation_id}/entries", "member_id", "GET /members/{member_id}/entitlements"),
)
