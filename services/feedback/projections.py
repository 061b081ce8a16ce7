"""Feedback's read models, one small function per event: own events in the append's transaction, consumed ones
(service card) in the inbox transaction. Organisations and members are the kernel's directory (shared.directory).
The ballot box is not among them: see ballot_box.py.
"""

from __future__ import annotations

import json

import asyncpg

from published import servicecard
from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

redemptions = Projection("redemptions", tables=["redemptions"])
ratings = Projection("ratings", tables=["ratings"])
campaigns = Projection("campaigns", tables=["campaigns", "eligible_voters"])
requests = Projection("requests", tables=["requests"])

ALL = [redemptions, ratings, campaigns, requests]

# --- redemptions, from the card service's topic (published/servicecard.py) ---


@redemptions.on("BenefitRedeemed", source=servicecard.SOURCE)
def on_benefit_redeemed(e: Recorded) -> Statements:
    redeemed = e.read_as(servicecard.BenefitRedeemed)
    return [
        stmt(
            "INSERT INTO redemptions (redemption_id, member_id, item_id, category, org_id, redeemed_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (redemption_id) DO NOTHING",
            redeemed.redemption_id,
            redeemed.member_id,
            redeemed.item_id,
            redeemed.category,
            redeemed.org_id,
            redeemed.redeemed_at,
        )
    ]


@redemptions.on("RedemptionReversed", source=servicecard.SOURCE)
def on_redemption_reversed(e: Recorded) -> Statements:
    reversed_ = e.read_as(servicecard.RedemptionReversed)
    return [stmt("UPDATE redemptions SET reversed = true WHERE redemption_id = $1", reversed_.redemption_id)]


# --- own events ---


@ratings.on("RatingGiven")
def on_rating_given(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO ratings (redemption_id, member_id, item_id, category, org_id, month, score, comment, "
            "rated_at) "
            "VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            d["redemption_id"],
            d["member_id"],
            d["item_id"],
            d["category"],
            d["org_id"],
            d["month"],
            d["score"],
            d.get("comment"),
            e.recorded_at,
        )
    ]


@campaigns.on("CampaignOpened")
async def on_campaign_opened(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        """
        INSERT INTO campaigns (campaign_id, title, subject_type, subject_id, electorate_org_id, electorate, opens_at,
                               closes_at, min_turnout, eligible, electorate_as_of)
        VALUES ($1::uuid, $2, $3, $4::uuid, $5::uuid, $6, $7::text::timestamptz, $8::text::timestamptz, $9, $10, $11)
        ON CONFLICT (campaign_id) DO NOTHING
        """,
        d["campaign_id"],
        d["title"],
        d["subject_type"],
        d["subject_id"],
        d["electorate_org_id"],
        d["electorate"],
        d["opens_at"],
        d["closes_at"],
        d["min_turnout"],
        d["eligible"],
        d.get("electorate_as_of"),
    )
    await conn.execute(
        "INSERT INTO eligible_voters (campaign_id, voter_id) SELECT $1::uuid, v FROM unnest($2::uuid[]) AS v "
        "ON CONFLICT DO NOTHING",
        d["campaign_id"],
        d.get("eligible_voters", []),
    )


@campaigns.on("CampaignClosed")
def on_campaign_closed(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE campaigns SET closed_at = $2::text::timestamptz, close_reason = $3, turnout = $4 "
            "WHERE campaign_id = $1::uuid",
            d["campaign_id"],
            d["closed_at"],
            d["reason"],
            d["turnout"],
        )
    ]


@campaigns.on("ResultsPublished")
def on_results_published(e: Recorded) -> Statements:
    d = e.data
    results = {k: d[k] for k in ("turnout", "eligible", "average", "distribution")}
    return [
        stmt(
            "UPDATE campaigns SET results = $2::jsonb WHERE campaign_id = $1::uuid",
            d["campaign_id"],
            json.dumps(results),
        )
    ]


@requests.on("RequestRaised")
def on_request_raised(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO requests (request_id, member_id, org_id, category, text, raised_at) "
            "VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6) ON CONFLICT DO NOTHING",
            d["request_id"],
            d["member_id"],
            d["org_id"],
            d["category"],
            d["text"],
            e.recorded_at,
        )
    ]


@requests.on("RequestAnswered")
def on_request_answered(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE requests SET answered_at = $2, answered_by = $3, answer = $4 WHERE request_id = $1::uuid",
            d["request_id"],
            e.recorded_at,
            d["by"],
            d["text"],
        )
    ]
