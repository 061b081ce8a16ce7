"""Service card HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.servicecard import access, domain, queries
from services.servicecard.events import OpeningHours, ServicePoint, Weekday
from services.servicecard.service import ServicecardService
from shared.auth import organization
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.params import Month
from shared.web.routes import NO_TARGET

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[ServicecardService], routes.CALL]

Text = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
CardNo = Annotated[str, Field(max_length=40, description="19 digits with a Luhn check digit")]


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
async def get_member_card(member_id: UUID, call: Call) -> dict[str, Any]:
    """The member's current card; 404 until membership's join reached this service."""
    return await call.read(
        "card.read", access.member(call.pool, member_id), lambda conn: queries.member_card(conn, member_id)
    )


@router.get("/cards/{card_no}", tags=["cards"])
async def get_card(card_no: CardNo, call: Call) -> dict[str, Any]:
    """A card by its number, current or replaced."""
    return await call.read("card.read", access.card(call.pool, card_no), lambda conn: queries.card(conn, card_no))


@router.post("/cards/{card_no}/reissue", tags=["cards"])
async def reissue_card(card_no: CardNo, body: ReasonIn, call: Call) -> JSONResponse:
    """Reissue a lost or damaged card: a new number; the old number is revoked."""
    return await call.command(
        "card.reissue",
        access.card(call.pool, card_no),
        lambda conn, meta: call.service.servicecard.reissue(conn, card_no, body.reason, meta),
        answer=lambda new_no: {"card_no": new_no, "replaced": card_no},
    )


# --- the catalogue ---


@router.post("/catalog/items", status_code=201, tags=["catalogue"])
async def publish_item(body: ItemIn, call: Call) -> JSONResponse:
    """Publish a service item to the catalogue, with its service points and opening hours."""
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
    return await call.command(
        "catalog.publish",
        organization(body.org_id),
        lambda conn, meta: call.service.servicecard.publish_item(conn, cmd, meta),
        answer=lambda item_id: {"item_id": item_id},
        status_code=201,
    )


@router.get("/catalog/items", tags=["catalogue"])
async def list_items(
    call: Call, category: domain.ServiceCategory | None = None, include_withdrawn: bool = False
) -> dict[str, Any]:
    """The catalogue, by category; withdrawn items only when asked."""
    items = await call.read(
        "catalog.read", NO_TARGET, lambda conn: queries.catalog_items(conn, category, include_withdrawn)
    )
    return {"items": items}


@router.get("/catalog/items/{item_id}", tags=["catalogue"])
async def get_item(item_id: UUID, call: Call) -> dict[str, Any]:
    """One catalogue item."""
    return await call.read("catalog.read", NO_TARGET, lambda conn: queries.catalog_item(conn, item_id))


@router.post("/catalog/items/{item_id}/withdraw", tags=["catalogue"])
async def withdraw_item(item_id: UUID, call: Call, body: OptionalReasonIn | None = None) -> JSONResponse:
    """Withdraw an item: it can no longer be redeemed."""
    reason = body.reason if body and body.reason else "withdrawn"
    return await call.command(
        "catalog.withdraw",
        access.item(call.pool, item_id),
        lambda conn, meta: call.service.servicecard.withdraw_item(conn, item_id, reason, meta),
        answer=lambda _: {"item_id": item_id, "status": "withdrawn"},
    )


# --- redemptions ---


@router.post("/cards/{card_no}/redemptions", status_code=201, tags=["redemptions"])
async def redeem(card_no: CardNo, body: RedemptionIn, call: Call) -> JSONResponse:
    """Spend a service on a card (核销); send an Idempotency-Key so a retry never spends twice."""
    cmd = domain.Redeem(
        redemption_id=uuid4(), card_no=card_no, item_id=body.item_id, units=body.units, provider_ref=body.provider_ref
    )
    return await call.command(
        "redemption.create",
        access.card(call.pool, card_no),
        lambda conn, meta: call.service.servicecard.redeem(conn, cmd, meta),
        answer=lambda redemption_id: {"redemption_id": redemption_id, "status": "redeemed"},
        status_code=201,
    )


@router.get("/redemptions/{redemption_id}", tags=["redemptions"])
async def get_redemption(redemption_id: UUID, call: Call) -> dict[str, Any]:
    """One redemption and whether it was reversed."""
    return await call.read(
        "redemption.read",
        access.redemption(call.pool, redemption_id),
        lambda conn: queries.redemption(conn, redemption_id),
    )


@router.post("/redemptions/{redemption_id}/reverse", tags=["redemptions"])
async def reverse_redemption(redemption_id: UUID, body: ReasonIn, call: Call) -> JSONResponse:
    """Reverse a redemption: its units count towards the quota no more."""
    return await call.command(
        "redemption.reverse",
        access.redemption(call.pool, redemption_id),
        lambda conn, meta: call.service.servicecard.reverse(conn, redemption_id, body.reason, meta),
        answer=lambda _: {"redemption_id": redemption_id, "status": "reversed"},
    )


# --- views ---


@router.get("/members/{member_id}/benefits", tags=["redemptions"])
async def get_benefits(
    member_id: UUID, call: Call, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> dict[str, Any]:
    """What the member used and has left of each item in a quota year (this year by default)."""
    quota_year = year or domain.quota_year(datetime.now(UTC))
    return await call.read(
        "benefits.read", access.member(call.pool, member_id), lambda conn: queries.benefits(conn, member_id, quota_year)
    )


@router.get("/stats/usage", tags=["redemptions"])
async def get_usage_stats(
    call: Call,
    org_id: UUID | None = None,
    category: domain.ServiceCategory | None = None,
    month: Annotated[Month | None, Query(description="YYYY-MM")] = None,
) -> dict[str, Any]:
    """Services given, net of reversals, by organisation, category and month (China Standard Time).

    Staff see their own organisation unless they name one inside it."""
    org_id = call.own_organization(org_id)
    return await call.read(
        "usage.read",
        organization(org_id),
        lambda conn: queries.usage_stats(conn, org_id, category, month.strftime("%Y-%m") if month else None),
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /catalog/items",
        "item_id",
        "GET /catalog/items/{item_id}",
        "POST /catalog/items/{item_id}/withdraw",
        "POST /cards/{card_no}/redemptions",
        "POST /allocations",
    ),
    Link(
        "POST /cards/{card_no}/redemptions",
        "redemption_id",
        "GET /redemptions/{redemption_id}",
        "POST /redemptions/{redemption_id}/reverse",
    ),
    Link("POST /cards/{card_no}/reissue", "card_no", "GET /cards/{card_no}", "POST /cards/{card_no}/redemptions"),
)
