"""Service card HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.servicecard import access, domain, queries
from services.servicecard.events import OpeningHours, ServicePoint, Weekday
from services.servicecard.handlers import Servicecard
from services.servicecard.service import ServiceDep
from shared.app import request_metadata, run_command
from shared.auth import CurrentPrincipal, Role, authenticate, organization
from shared.consistency import read_after

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])

Text = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
CardNo = Annotated[str, Field(max_length=40, description="19 digits with a Luhn check digit")]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("opening hours are local times without a time zone, e.g. 09:00")
    return value


LocalTime = Annotated[time, AfterValidator(_local_time)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HoursIn(Body):
    days: list[Weekday] = Field(min_length=1, max_length=7)
    opens: LocalTime
    closes: LocalTime


class ServicePointIn(Body):
    name: Name
    address: Text
    phone: str | None = Field(None, max_length=40)
    opening_hours: list[HoursIn] = Field(default_factory=list, max_length=20)
    off_peak_hours: list[HoursIn] = Field(default_factory=list, max_length=20)


class ItemIn(Body):
    name: Name
    category: domain.ServiceCategory
    provider: Name
    standard: Annotated[str, Field(min_length=1, max_length=4000)]
    quota_per_year: int | None = Field(None, le=100_000, description="per member and calendar year; none: no limit")
    service_points: list[ServicePointIn] = Field(default_factory=list, max_length=200)
    org_id: UUID | None = Field(None, description="the organisation offering it; none: the whole federation (admins)")


class ReasonIn(Body):
    reason: Text


class OptionalReasonIn(Body):
    reason: Text | None = None


def _at_least_one_unit(units: int) -> int:
    if units < 1:
        raise ValueError("a redemption spends at least 1 unit")
    return units


class RedemptionIn(Body):
    item_id: UUID
    units: Annotated[int, AfterValidator(_at_least_one_unit)] = Field(1, le=1000)
    provider_ref: str | None = Field(None, max_length=100)


async def _servicecard(service: ServiceDep) -> Servicecard:
    return service.servicecard


ServicecardDep = Annotated[Servicecard, Depends(_servicecard)]


def _point(body: ServicePointIn) -> ServicePoint:
    def hours(windows: list[HoursIn]) -> tuple[OpeningHours, ...]:
        return tuple(OpeningHours(days=tuple(w.days), opens=w.opens, closes=w.closes) for w in windows)

    return ServicePoint(
        name=body.name,
        address=body.address,
        phone=body.phone,
        opening_hours=hours(body.opening_hours),
        off_peak_hours=hours(body.off_peak_hours),
    )


# --- cards ---


@router.get("/members/{member_id}/card", tags=["cards"])
async def get_member_card(member_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The member's current card; 404 until membership's join reached this service."""
    await access.guard.check(service.pool, principal, "card.read", await access.member(service.pool, member_id))
    async with service.pool.acquire() as conn:
        return await queries.member_card(conn, member_id)


@router.get("/cards/{card_no}", tags=["cards"])
async def get_card(card_no: CardNo, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A card by its number, current or replaced."""
    await access.guard.check(service.pool, principal, "card.read", await access.card(service.pool, card_no))
    async with service.pool.acquire() as conn:
        return await queries.card(conn, card_no)


@router.post("/cards/{card_no}/reissue", tags=["cards"])
async def reissue_card(
    card_no: CardNo,
    body: ReasonIn,
    request: Request,
    service: ServiceDep,
    servicecard: ServicecardDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Reissue a lost or damaged card: a new number; the old number is revoked."""
    await access.guard.check(service.pool, principal, "card.reissue", await access.card(service.pool, card_no))
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        return {"card_no": await servicecard.reissue(conn, card_no, body.reason, meta), "replaced": card_no}

    return await run_command(request, service.pool, run)


# --- the catalogue ---


@router.post("/catalog/items", status_code=201, tags=["catalogue"])
async def publish_item(
    body: ItemIn, request: Request, service: ServiceDep, servicecard: ServicecardDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Publish a service item to the catalogue, with its service points and opening hours."""
    await access.guard.check(service.pool, principal, "catalog.publish", organization(body.org_id))
    cmd = domain.PublishItem(
        item_id=uuid4(),
        name=body.name,
        category=body.category,
        provider=body.provider,
        standard=body.standard,
        quota_per_year=body.quota_per_year,
        service_points=[_point(p) for p in body.service_points],
        org_id=body.org_id,
    )
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        return {"item_id": await servicecard.publish_item(conn, cmd, meta)}

    return await run_command(request, service.pool, run, 201)


@router.get("/catalog/items", tags=["catalogue"])
async def list_items(
    service: ServiceDep,
    principal: CurrentPrincipal,
    category: domain.ServiceCategory | None = None,
    include_withdrawn: bool = False,
) -> dict[str, Any]:
    """The catalogue, by category; withdrawn items only when asked."""
    await access.guard.check(service.pool, principal, "catalog.read")
    async with service.pool.acquire() as conn:
        return {"items": await queries.catalog_items(conn, category, include_withdrawn)}


@router.get("/catalog/items/{item_id}", tags=["catalogue"])
async def get_item(item_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One catalogue item."""
    await access.guard.check(service.pool, principal, "catalog.read")
    async with service.pool.acquire() as conn:
        return await queries.catalog_item(conn, item_id)


@router.post("/catalog/items/{item_id}/withdraw", tags=["catalogue"])
async def withdraw_item(
    item_id: UUID,
    request: Request,
    service: ServiceDep,
    servicecard: ServicecardDep,
    principal: CurrentPrincipal,
    body: OptionalReasonIn | None = None,
) -> JSONResponse:
    """Withdraw an item: it can no longer be redeemed."""
    await access.guard.check(service.pool, principal, "catalog.withdraw", await access.item(service.pool, item_id))
    meta = request_metadata(request, principal)
    reason = body.reason if body and body.reason else "withdrawn"

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await servicecard.withdraw_item(conn, item_id, reason, meta)
        return {"item_id": item_id, "status": "withdrawn"}

    return await run_command(request, service.pool, run)


# --- redemptions ---


@router.post("/cards/{card_no}/redemptions", status_code=201, tags=["redemptions"])
async def redeem(
    card_no: CardNo,
    body: RedemptionIn,
    request: Request,
    service: ServiceDep,
    servicecard: ServicecardDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Spend a service on a card (核销); send an Idempotency-Key so a retry never spends twice."""
    await access.guard.check(service.pool, principal, "redemption.create", await access.card(service.pool, card_no))
    cmd = domain.Redeem(
        redemption_id=uuid4(), card_no=card_no, item_id=body.item_id, units=body.units, provider_ref=body.provider_ref
    )
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        return {"redemption_id": await servicecard.redeem(conn, cmd, meta), "status": "redeemed"}

    return await run_command(request, service.pool, run, 201)


@router.get("/redemptions/{redemption_id}", tags=["redemptions"])
async def get_redemption(redemption_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One redemption and whether it was reversed."""
    target = await access.redemption(service.pool, redemption_id)
    await access.guard.check(service.pool, principal, "redemption.read", target)
    async with service.pool.acquire() as conn:
        return await queries.redemption(conn, redemption_id)


@router.post("/redemptions/{redemption_id}/reverse", tags=["redemptions"])
async def reverse_redemption(
    redemption_id: UUID,
    body: ReasonIn,
    request: Request,
    service: ServiceDep,
    servicecard: ServicecardDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Reverse a redemption: its units count towards the quota no more."""
    target = await access.redemption(service.pool, redemption_id)
    await access.guard.check(service.pool, principal, "redemption.reverse", target)
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await servicecard.reverse(conn, redemption_id, body.reason, meta)
        return {"redemption_id": redemption_id, "status": "reversed"}

    return await run_command(request, service.pool, run)


# --- views ---


@router.get("/members/{member_id}/benefits", tags=["redemptions"])
async def get_benefits(
    member_id: UUID,
    service: ServiceDep,
    principal: CurrentPrincipal,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> dict[str, Any]:
    """What the member used and has left of each item in a quota year (this year by default)."""
    await access.guard.check(service.pool, principal, "benefits.read", await access.member(service.pool, member_id))
    async with service.pool.acquire() as conn:
        return await queries.benefits(conn, member_id, year or domain.quota_year(datetime.now(UTC)))


@router.get("/stats/usage", tags=["redemptions"])
async def get_usage_stats(
    service: ServiceDep,
    principal: CurrentPrincipal,
    org_id: UUID | None = None,
    category: domain.ServiceCategory | None = None,
    month: Month = None,
) -> dict[str, Any]:
    """Services given, net of reversals, by organisation, category and month (China Standard Time).

    Staff see their own organisation unless they name one inside it."""
    if org_id is None and principal.role is Role.STAFF:
        org_id = principal.org_id
    await access.guard.check(service.pool, principal, "usage.read", organization(org_id))
    async with service.pool.acquire() as conn:
        return await queries.usage_stats(conn, org_id, category, month)
