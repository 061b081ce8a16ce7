"""Service card read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypeVar

import asyncpg

from services.servicecard.domain import usage_month
from services.servicecard.events import (
    BenefitRedeemed,
    CardFrozen,
    CardIssued,
    CardOrganizationChanged,
    CardReissued,
    CardRevoked,
    CardUnfrozen,
    RedemptionReversed,
    ServiceItemPublished,
    ServiceItemWithdrawn,
)
from shared.events import DomainEvent
from shared.projections import Projection, Statements, batch_handler, stmt
from shared.store import Recorded

cards = Projection("cards", tables=["cards"])
catalog = Projection("catalog", tables=["catalog_items"])
redemptions = Projection("redemptions", tables=["redemptions"])

ALL = [cards, catalog, redemptions]

E = TypeVar("E", bound=DomainEvent)


def _event(entry: Recorded, cls: type[E]) -> E:
    # own events arrive decoded (and upcast), both in the append and in a rebuild
    event = entry.event
    if not isinstance(event, cls):
        raise TypeError(f"expected {cls.__name__}, got {entry.name}")
    return event


@cards.on("CardIssued")
@batch_handler
async def on_cards_issued(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    """A run of new cards (a batch of joins followed) in one multi-row statement."""
    issued = [(_event(e, CardIssued), e.recorded_at) for e in entries]
    await conn.execute(
        "INSERT INTO cards (card_no, member_id, member_no, status, org_id, issued_at, updated_at)"
        " SELECT c, m, n, 'active', o, i, u"
        " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[], $6::timestamptz[])"
        " AS x(c, m, n, o, i, u) ON CONFLICT (card_no) DO NOTHING",
        [ev.card_no for ev, _ in issued],
        [ev.member_id for ev, _ in issued],
        [ev.member_no for ev, _ in issued],
        [ev.org_id for ev, _ in issued],
        [ev.issued_at for ev, _ in issued],
        [at for _, at in issued],
    )


def _set_status(e: Recorded, card_no: str, status: str) -> Statements:
    return [stmt("UPDATE cards SET status = $2, updated_at = $3 WHERE card_no = $1", card_no, status, e.recorded_at)]


@cards.on("CardFrozen")
def on_card_frozen(e: Recorded) -> Statements:
    return _set_status(e, _event(e, CardFrozen).card_no, "frozen")


@cards.on("CardUnfrozen")
def on_card_unfrozen(e: Recorded) -> Statements:
    return _set_status(e, _event(e, CardUnfrozen).card_no, "active")


@cards.on("CardRevoked")
def on_card_revoked(e: Recorded) -> Statements:
    return _set_status(e, _event(e, CardRevoked).card_no, "revoked")


@cards.on("CardReissued")
async def on_card_reissued(conn: asyncpg.Connection, e: Recorded) -> None:
    ev = _event(e, CardReissued)
    # the new number keeps the card's status (a frozen card is reissued frozen); the old one is revoked
    old = await conn.fetchrow(
        "SELECT member_no, status FROM cards WHERE card_no = $1 AND replaced_by IS NULL", ev.old_card_no
    )
    if old is None:
        return  # already applied
    await conn.execute(
        "UPDATE cards SET status = 'revoked', replaced_by = $2, updated_at = $3 WHERE card_no = $1",
        ev.old_card_no,
        ev.card_no,
        e.recorded_at,
    )
    await conn.execute(
        "INSERT INTO cards (card_no, member_id, member_no, status, org_id, issued_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (card_no) DO NOTHING",
        ev.card_no,
        ev.member_id,
        old["member_no"],
        old["status"],
        ev.org_id,
        ev.reissued_at,
        e.recorded_at,
    )


@cards.on("CardOrganizationChanged")
def on_card_organization_changed(e: Recorded) -> Statements:
    ev = _event(e, CardOrganizationChanged)
    return [
        stmt(
            "UPDATE cards SET org_id = $2, updated_at = $3 WHERE card_no = $1", ev.card_no, ev.to_org_id, e.recorded_at
        )
    ]


@catalog.on("ServiceItemPublished")
def on_service_item_published(e: Recorded) -> Statements:
    ev = _event(e, ServiceItemPublished)
    return [
        stmt(
            "INSERT INTO catalog_items (item_id, name, category, provider, standard, quota_per_year, service_points, "
            "published_at, org_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) ON CONFLICT (item_id) DO NOTHING",
            ev.item_id,
            ev.name,
            ev.category,
            ev.provider,
            ev.standard,
            ev.quota_per_year,
            json.dumps([p.model_dump(mode="json") for p in ev.service_points], ensure_ascii=False),
            e.recorded_at,
            ev.org_id,
        )
    ]


@catalog.on("ServiceItemWithdrawn")
def on_service_item_withdrawn(e: Recorded) -> Statements:
    ev = _event(e, ServiceItemWithdrawn)
    return [
        stmt(
            "UPDATE catalog_items SET status = 'withdrawn', withdrawn_at = $2, withdraw_reason = $3 WHERE item_id = $1",
            ev.item_id,
            e.recorded_at,
            ev.reason,
        )
    ]


@redemptions.on("BenefitRedeemed")
def on_benefit_redeemed(e: Recorded) -> Statements:
    ev = _event(e, BenefitRedeemed)
    return [
        stmt(
            """
        INSERT INTO redemptions (redemption_id, member_id, card_no, item_id, category, org_id, units, provider_ref,
                                 year, month, redeemed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (redemption_id) DO NOTHING
        """,
            ev.redemption_id,
            ev.member_id,
            ev.card_no,
            ev.item_id,
            ev.category,
            ev.org_id,
            ev.units,
            ev.provider_ref,
            ev.year,
            usage_month(ev.redeemed_at),
            ev.redeemed_at,
        )
    ]


@redemptions.on("RedemptionReversed")
def on_redemption_reversed(e: Recorded) -> Statements:
    ev = _event(e, RedemptionReversed)
    return [
        stmt(
            "UPDATE redemptions SET status = 'reversed', reversed_at = $2, reverse_reason = $3 WHERE "
            "redemption_id = $1",
            ev.redemption_id,
            ev.reversed_at,
            ev.reason,
        )
    ]
