"""Allocations' read models: `allocations` (with the first-come count that entries lock), `allocation_entries` (a
draw's entrants) and `entitlements`; each applied in the append's transaction."""

from __future__ import annotations

from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

allocations = Projection("allocations", tables=["allocations", "allocation_entries"])
entitlements = Projection("entitlements", tables=["entitlements"])

ALL = [allocations, entitlements]


@allocations.on("AllocationOpened")
def on_allocation_opened(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO allocations (allocation_id, item_id, org_id, title, mode, places, period, limit_per_member, "
            "entries_close_at, seed_commitment) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, "
            "$9::text::timestamptz, $10) ON CONFLICT (allocation_id) DO NOTHING",
            d["allocation_id"],
            d["item_id"],
            d["org_id"],
            d["title"],
            d["mode"],
            d["places"],
            d["period"],
            d["limit_per_member"],
            d["entries_close_at"],
            d["seed_commitment"],
        )
    ]


@allocations.on("AllocationEntered")
def on_allocation_entered(e: Recorded) -> Statements:
    return [
        stmt(
            "INSERT INTO allocation_entries (allocation_id, member_id) VALUES ($1::uuid, $2::uuid) "
            "ON CONFLICT DO NOTHING",
            e.data["allocation_id"],
            e.data["member_id"],
        )
    ]


@allocations.on("PlaceAllocated")
def on_place_allocated(e: Recorded) -> Statements:
    return [stmt("UPDATE allocations SET taken = taken + 1 WHERE allocation_id = $1::uuid", e.data["allocation_id"])]


@allocations.on("DrawHeld")
def on_draw_held(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE allocations SET drawn = true, seed = $2, entries_digest = $3, winners = $4::uuid[], taken = $5 "
            "WHERE allocation_id = $1::uuid",
            d["allocation_id"],
            d["seed"],
            d["entries_digest"],
            d["winners"],
            len(d["winners"]),
        )
    ]


@entitlements.on("EntitlementGranted")
def on_entitlement_granted(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO entitlements (entitlement_id, member_id, allocation_id, item_id, expires_at, status) "
            "VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::text::timestamptz, 'granted') ON CONFLICT DO NOTHING",
            d["entitlement_id"],
            d["member_id"],
            d["allocation_id"],
            d["item_id"],
            d["expires_at"],
        )
    ]


@entitlements.on("EntitlementUsed")
def on_entitlement_used(e: Recorded) -> Statements:
    return [stmt("UPDATE entitlements SET status = 'used' WHERE entitlement_id = $1::uuid", e.data["entitlement_id"])]


@entitlements.on("EntitlementNoShow")
def on_entitlement_no_show(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE entitlements SET status = 'no_show', banned_until = $2::text::timestamptz "
            "WHERE entitlement_id = $1::uuid",
            e.data["entitlement_id"],
            e.data["banned_until"],
        )
    ]
