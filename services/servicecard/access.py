"""Who may do what in the service-card service: one table, checked by every route (shared.auth.Guard).

A member reads their own card, benefits and redemptions and may have a lost card reissued. Services are
spent on a card by the staff of the member's organisation (or above) or by a provider's system integration
holding `redemptions:write`. Catalogue items belong to the organisation that offers them; items for the
whole federation (no organisation) are the admins'.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.servicecard.domain import parse_card_number
from shared.auth import Guard, Rule, Target, target_of

guard = Guard(
    {
        "card.read": Rule(staff=True, member=True, scope="cards:read"),
        "card.reissue": Rule(staff=True, member=True),
        "catalog.publish": Rule(staff=True),
        "catalog.read": Rule(anyone=True, scope="cards:read"),
        "catalog.withdraw": Rule(staff=True),
        "redemption.create": Rule(staff=True, scope="redemptions:write"),
        "redemption.read": Rule(staff=True, member=True, scope="cards:read"),
        "redemption.reverse": Rule(staff=True, scope="redemptions:write"),
        "benefits.read": Rule(staff=True, member=True, scope="cards:read"),
        "usage.read": Rule(staff=True, scope="stats:read"),
        # allocations of scarce places: opened and drawn by the organisation's staff; a member enters for themselves
        "allocation.open": Rule(staff=True),
        "allocation.read": Rule(anyone=True, scope="cards:read"),
        "allocation.enter": Rule(member=True, admin=False),
        "allocation.draw": Rule(staff=True),
        "entitlement.read": Rule(staff=True, member=True, scope="cards:read"),
        "entitlement.use": Rule(staff=True, scope="redemptions:write"),
    }
)


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    """The member's organisation as their current card says; 404 for someone who holds no card."""
    sql = "SELECT org_id, member_id FROM cards WHERE member_id = $1 AND replaced_by IS NULL"
    return await target_of(pool, sql, member_id, "card", f"member:{member_id}")


async def card(pool: asyncpg.Pool, card_no: str) -> Target:
    card_no = parse_card_number(card_no)
    sql = "SELECT org_id, member_id FROM cards WHERE card_no = $1"
    return await target_of(pool, sql, card_no, "card", f"card:{card_no}")


async def item(pool: asyncpg.Pool, item_id: UUID) -> Target:
    sql = "SELECT org_id FROM catalog_items WHERE item_id = $1"
    return await target_of(pool, sql, item_id, "item", f"item:{item_id}")


async def redemption(pool: asyncpg.Pool, redemption_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM redemptions WHERE redemption_id = $1"
    return await target_of(pool, sql, redemption_id, "redemption", f"redemption:{redemption_id}")


async def allocation(pool: asyncpg.Pool, allocation_id: UUID) -> Target:
    sql = "SELECT org_id FROM allocations WHERE allocation_id = $1"
    return await target_of(pool, sql, allocation_id, "allocation", f"allocation:{allocation_id}")


async def entitlement(pool: asyncpg.Pool, entitlement_id: UUID) -> Target:
    """The member's organisation as their current card says."""
    sql = (
        "SELECT c.org_id, e.member_id FROM entitlements e "
        "LEFT JOIN cards c ON c.member_id = e.member_id AND c.replaced_by IS NULL WHERE e.entitlement_id = $1"
    )
    return await target_of(pool, sql, entitlement_id, "entitlement", f"entitlement:{entitlement_id}")
