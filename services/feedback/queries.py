"""Feedback's views: read models shaped for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.feedback import ballot_box, domain
from services.feedback.domain import Campaign
from services.feedback.handlers import campaign_from_row
from shared.errors import NotFoundError

JSON = dict[str, Any]

# the organisation alone, or with everything below it (the kernel's directory)
_ORGS = "(SELECT org_id FROM directory_subtree($1) WHERE $2::boolean UNION SELECT $1::uuid)"


async def _known_org(conn: asyncpg.Connection, org_id: UUID, table: str) -> None:
    if not await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM directory_orgs WHERE org_id = $1) OR EXISTS (SELECT 1 FROM {table} "
        "WHERE org_id = $1)",
        org_id,
    ):
        raise NotFoundError("organization", org_id)


async def satisfaction(conn: asyncpg.Connection, org_id: UUID, subtree: bool) -> JSON:
    await _known_org(conn, org_id, "ratings")
    rows = await conn.fetch(
        "SELECT category, month, count(*) AS ratings, avg(score)::float AS average "
        f"FROM ratings WHERE org_id IN {_ORGS} GROUP BY GROUPING SETS ((category, month), ()) "
        "ORDER BY month, category",
        org_id,
        subtree,
    )
    items = [
        {"category": r["category"], "month": r["month"], "ratings": r["ratings"], "average": round(r["average"], 2)}
        for r in rows
        if r["category"] is not None
    ]
    total = next((r for r in rows if r["category"] is None), None)
    overall = {
        "ratings": total["ratings"] if total else 0,
        "average": round(total["average"], 2) if total and total["average"] is not None else None,
    }
    return {"org_id": org_id, "subtree": subtree, "items": items, "overall": overall}


async def campaign(conn: asyncpg.Connection, campaign_id: UUID, now: datetime) -> JSON:
    row = await conn.fetchrow("SELECT * FROM campaigns WHERE campaign_id = $1", campaign_id)
    if row is None:
        raise NotFoundError("campaign", campaign_id)
    state = campaign_from_row(row)
    view = {
        k: row[k]
        for k in (
            "campaign_id",
            "title",
            "subject_type",
            "subject_id",
            "electorate_org_id",
            "electorate",
            "opens_at",
            "closes_at",
            "min_turnout",
            "eligible",
            "electorate_as_of",
            "closed_at",
            "close_reason",
        )
    }
    view["status"] = domain.phase(state, now)
    # how many have voted so far: the register's size, which says nothing about any ballot
    view["turnout"] = state.turnout if state.turnout is not None else await ballot_box.turnout(conn, state.campaign_id)
    return view


async def results(conn: asyncpg.Connection, state: Campaign, now: datetime) -> JSON:
    published = domain.results(state, now)
    return {
        "campaign_id": state.campaign_id,
        "turnout": published.turnout,
        "eligible": published.eligible,
        "turnout_rate": round(published.turnout / published.eligible, 4) if published.eligible else 0.0,
        "average": published.average,
        "distribution": published.distribution,
        "closed_at": state.closed_at,
        "comments": await ballot_box.comments(conn, state.campaign_id),
    }


def _request(row: Any, now: datetime) -> JSON:
    view = {
        k: row[k]
        for k in (
            "request_id",
            "member_id",
            "org_id",
            "category",
            "text",
            "raised_at",
            "answered_at",
            "answered_by",
            "answer",
        )
    }
    age = (now - row["raised_at"]).total_seconds()
    view["status"] = "open" if row["answered_at"] is None else "answered"
    view["age_seconds"] = max(0, int(age))
    view["age_days"] = max(0, int(age // 86400))
    return view


async def request(conn: asyncpg.Connection, request_id: UUID, now: datetime) -> JSON:
    row = await conn.fetchrow("SELECT * FROM requests WHERE request_id = $1", request_id)
    if row is None:
        raise NotFoundError("request", request_id)
    return _request(row, now)


async def requests(conn: asyncpg.Connection, org_id: UUID, status: str | None, now: datetime) -> JSON:
    await _known_org(conn, org_id, "requests")
    rows = await conn.fetch(
        "SELECT * FROM requests WHERE org_id = $1 AND ($2::text IS NULL OR (answered_at IS NULL) = ($2 = 'open')) "
        "ORDER BY raised_at, request_id",
        org_id,
        status,
    )
    return {"org_id": org_id, "items": [_request(r, now) for r in rows]}
