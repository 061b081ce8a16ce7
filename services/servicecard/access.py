"""Who may do what in the service-card service: one table, checked by every route (shared.auth.Guard).

A member reads their own card, benefits and redemptions and may have a lost card reissued. Services are
spent on a card by the staff of the member's organisation (or above) or by a provider's system integration
holding `redemptions:write`. Catalogue items belong to the organisation that offers them; items for the
whole federation (no organisation) are the admins'.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Guard, Rule, Target
from shared.errors import InvalidInputError, NotFoundError
from shared.validators import validate_card_number

guard = Guard(
    {
        "card.read": Rule(staff=True, member=True, scope="cards:read"),
        "card.reissue": Rule(staff=True, member=True),
        "catalog.publish": Rule(staff=True),
        "catalog.read": Rule(anyone=True),
        "catalog.withdraw": Rule(staff=True),
        "redemption.create": Rule(staff=True, scope="redemptions:write"),
        "redemption.read": Rule(staff=True, member=True, scope="cards:read"),
        "redemption.reverse": Rule(staff=True, scope="redemptions:write"),
        "benefits.read": Rule(staff=True, member=True, scope="cards:read"),
        "usage.read": Rule(staff=True, scope="stats:read"),
    }
)


def organization(org_id: UUID | None) -> Target:
    return Target(orgs=(org_id,) if org_id else (), label=f"organization:{org_id}")


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    """The member's organisation as their current card says; 404 for someone who holds no card."""
    org_id = await pool.fetchval("SELECT org_id FROM cards WHERE member_id = $1 AND replaced_by IS NULL", member_id)
    if org_id is None:
        raise NotFoundError("card", member_id)
    return Target(orgs=(org_id,), member_id=member_id, label=f"member:{member_id}")


async def card(pool: asyncpg.Pool, card_no: str) -> Target:
    try:
        card_no = validate_card_number(card_no)
    except ValueError as exc:
        raise InvalidInputError("card_no", str(exc)) from exc
    row = await pool.fetchrow("SELECT member_id, org_id FROM cards WHERE card_no = $1", card_no)
    if row is None:
        raise NotFoundError("card", card_no)
    return Target(orgs=(row["org_id"],), member_id=row["member_id"], label=f"member:{row['member_id']}")


async def item(pool: asyncpg.Pool, item_id: UUID) -> Target:
    row = await pool.fetchrow("SELECT org_id FROM catalog_items WHERE item_id = $1", item_id)
    if row is None:
        raise NotFoundError("item", item_id)
    return organization(row["org_id"])


async def redemption(pool: asyncpg.Pool, redemption_id: UUID) -> Target:
    row = await pool.fetchrow("SELECT member_id, org_id FROM redemptions WHERE redemption_id = $1", redemption_id)
    if row is None:
        raise NotFoundError("redemption", redemption_id)
    return Target(orgs=(row["org_id"],), member_id=row["member_id"], label=f"redemption:{redemption_id}")
