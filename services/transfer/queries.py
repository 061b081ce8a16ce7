"""Transfer's views: read models shaped for the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg

from shared.errors import NotFoundError

JSON = dict[str, Any]

_FIELDS = (
    "transfer_id",
    "status",
    "member_id",
    "member_no",
    "from_org_id",
    "to_org_id",
    "reason",
    "requested_by",
    "requested_at",
    "expires_at",
    "batch_id",
    "completed_at",
    "duration_seconds",
    "closed_reason",
)


def _summary(row: asyncpg.Record) -> JSON:
    return {**{k: row[k] for k in _FIELDS}, "escalated_to_org_id": row["escalated_to"]}


def transfer_after(transfer_id: UUID) -> Callable[[asyncpg.Connection, object], Awaitable[JSON]]:
    """What a step on a transfer answers: the transfer as the step left it (read in the step's transaction)."""
    return lambda conn, _: transfer(conn, transfer_id)


async def transfer(conn: asyncpg.Connection, transfer_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM transfers WHERE transfer_id = $1", transfer_id)
    if row is None:
        raise NotFoundError("transfer", transfer_id)
    steps = await conn.fetch(
        "SELECT step, by, org_id, at, reason FROM transfer_steps WHERE transfer_id = $1 ORDER BY version",
        transfer_id,
    )
    return {**_summary(row), "steps": [dict(s) for s in steps]}


async def _known_org(conn: asyncpg.Connection, org_id: UUID) -> None:
    if not await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", org_id):
        raise NotFoundError("organization", org_id)


async def organization_transfers(
    conn: asyncpg.Connection, org_id: UUID, direction: str | None, status: str | None, limit: int
) -> JSON:
    await _known_org(conn, org_id)
    rows = await conn.fetch(
        """
        SELECT *, CASE WHEN to_org_id = $1 THEN 'in' ELSE 'out' END AS direction FROM transfers
        WHERE ((coalesce($2, 'in') = 'in' AND to_org_id = $1) OR (coalesce($2, 'out') = 'out' AND from_org_id = $1))
          AND ($3::text IS NULL OR status = $3)
        ORDER BY requested_at DESC, transfer_id LIMIT $4
        """,
        org_id,
        direction,
        status,
        limit,
    )
    return {
        "org_id": org_id,
        "direction": direction,
        "status": status,
        "items": [{**_summary(r), "direction": r["direction"]} for r in rows],
    }


async def member_transfers(conn: asyncpg.Connection, member_id: UUID) -> JSON:
    known = await conn.fetchrow("SELECT org_id, status FROM directory_members WHERE member_id = $1", member_id)
    rows = await conn.fetch("SELECT * FROM transfers WHERE member_id = $1 ORDER BY requested_at", member_id)
    if known is None and not rows:
        raise NotFoundError("member", member_id)
    return {
        "member_id": member_id,
        "org_id": known["org_id"] if known else None,
        "member_status": known["status"] if known else None,
        "items": [_summary(r) for r in rows],
    }


_DURATIONS = """
SELECT count(*) AS count, avg(duration_seconds) AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_seconds) AS p90
FROM transfers WHERE status = 'completed' AND {side} = $1
"""


async def transfer_stats(conn: asyncpg.Connection, org_id: UUID) -> JSON:
    """Time from request to completion, in seconds, of the transfers into and out of the organisation."""
    await _known_org(conn, org_id)
    view: JSON = {"org_id": org_id}
    for direction, side in (("in", "to_org_id"), ("out", "from_org_id")):
        row = await conn.fetchrow(_DURATIONS.format(side=side), org_id)
        counted = await conn.fetch(
            f"SELECT status, count(*) AS n FROM transfers WHERE {side} = $1 GROUP BY status", org_id
        )
        by_status = {r["status"]: r["n"] for r in counted}
        view[direction] = {
            "count": row["count"],
            "mean_seconds": row["mean"],
            "p50_seconds": row["p50"],
            "p90_seconds": row["p90"],
            "by_status": by_status,
        }
    return view


async def batch(conn: asyncpg.Connection, batch_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM batches WHERE batch_id = $1", batch_id)
    if row is None:
        raise NotFoundError("batch", batch_id)
    items = [
        dict(r)
        for r in await conn.fetch(
            "SELECT member_id, status, transfer_id, code, reason FROM batch_items WHERE batch_id = $1 ORDER BY ordinal",
            batch_id,
        )
    ]
    counts = {s: sum(1 for i in items if i["status"] == s) for s in ("pending", "requested", "refused")}
    return {
        "batch_id": batch_id,
        "status": row["status"],
        "to_org_id": row["to_org_id"],
        "reason": row["reason"],
        "requested_by": row["requested_by"],
        "requested_at": row["requested_at"],
        "finished_at": row["finished_at"],
        "total": row["total"],
        **counts,
        "refusals": [
            {"member_id": i["member_id"], "code": i["code"], "reason": i["reason"]}
            for i in items
            if i["status"] == "refused"
        ],
        "items": items,
    }
