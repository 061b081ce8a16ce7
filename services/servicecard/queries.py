"""Service card views: read models shaped for the API."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from services.servicecard import domain
from shared.errors import DomainError, NotFoundError

JSON = dict[str, Any]

_CARD_FIELDS = ("card_no", "member_id", "member_no", "status", "org_id", "issued_at", "replaced_by")


async def member_card(conn: asyncpg.Connection, member_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM cards WHERE member_id = $1 AND replaced_by IS NULL", member_id)
    if row is None:
        raise DomainError("card_not_found", f"no card was issued to member {member_id} (yet)", status_code=404)
    return {k: row[k] for k in _CARD_FIELDS if k != "replaced_by"}


async def card(conn: asyncpg.Connection, card_no: str) -> JSON:
    row = await conn.fetchrow("SELECT * FROM cards WHERE card_no = $1", domain.parse_card_number(card_no))
    if row is None:
        raise NotFoundError("card", card_no)
    return {k: row[k] for k in _CARD_FIELDS}


def _item(row: asyncpg.Record) -> JSON:
    view = {
        k: row[k]
        for k in (
            "item_id",
            "org_id",
            "name",
            "category",
            "provider",
            "standard",
            "quota_per_year",
            "status",
            "published_at",
            "withdrawn_at",
        )
    }
    view["service_points"] = json.loads(row["service_points"])
    return view


async def catalog_items(conn: asyncpg.Connection, category: str | None, include_withdrawn: bool) -> list[JSON]:
    rows = await conn.fetch(
        "SELECT * FROM catalog_items WHERE ($1::text IS NULL OR category = $1) AND ($2 OR status = 'available') "
        "ORDER BY category, published_at, item_id",
        category,
        include_withdrawn,
    )
    return [_item(r) for r in rows]


async def catalog_item(conn: asyncpg.Connection, item_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM catalog_items WHERE item_id = $1", item_id)
    if row is None:
        raise NotFoundError("item", item_id)
    return _item(row)


async def benefits(conn: asyncpg.Connection, member_id: UUID, year: int) -> JSON:
    """What the member may still use this year: every item on offer, and any other they used this year."""
    await member_card(conn, member_id)  # 404 for someone who holds no card
    rows = await conn.fetch(
        """
        SELECT i.item_id, i.name, i.category, i.quota_per_year, i.status, coalesce(u.used, 0) AS used
        FROM catalog_items i
        LEFT JOIN (SELECT item_id, sum(units) AS used FROM redemptions
                   WHERE member_id = $1 AND year = $2 AND status = 'redeemed' GROUP BY item_id) u USING (item_id)
        WHERE i.status = 'available' OR u.used IS NOT NULL
        ORDER BY i.category, i.name, i.item_id
        """,
        member_id,
        year,
    )
    items = [
        {
            "item_id": r["item_id"],
            "name": r["name"],
            "category": r["category"],
            "quota_per_year": r["quota_per_year"],
            "used": r["used"],
            "remaining": domain.remaining(r["quota_per_year"], r["used"]),
            "status": r["status"],
        }
        for r in rows
    ]
    return {"member_id": member_id, "year": year, "items": items}


async def redemption(conn: asyncpg.Connection, redemption_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM redemptions WHERE redemption_id = $1", redemption_id)
    if row is None:
        raise NotFoundError("redemption", redemption_id)
    return dict(row)


async def usage_stats(conn: asyncpg.Connection, org_id: UUID | None, category: str | None, month: str | None) -> JSON:
    """Services given (not reversed), by organisation, category and month; `org_id` and everything below it."""
    rows = await conn.fetch(
        """
        SELECT org_id, category, month, count(*) AS redemptions, sum(units) AS units,
               count(DISTINCT member_id) AS members
        FROM redemptions
        WHERE status = 'redeemed' AND ($1::uuid IS NULL OR org_id IN (SELECT org_id FROM directory_subtree($1)))
          AND ($2::text IS NULL OR category = $2)
          AND ($3::text IS NULL OR month = $3)
        GROUP BY org_id, category, month
        ORDER BY month, org_id, category
        """,
        org_id,
        category,
        month,
    )
    items = [dict(r) for r in rows]
    return {
        "org_id": org_id,
        "category": category,
        "month": month,
        "items": items,
        "total": {"redemptions": sum(r["redemptions"] for r in items), "units": sum(r["units"] for r in items)},
    }
