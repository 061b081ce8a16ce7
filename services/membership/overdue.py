"""The overdue worker: records ApplicationOverdue for each pending application whose clock ran out.

It runs as a kernel Worker (shared.service); its state is rows, never in-memory timers: it claims due rows of the
work queue with FOR UPDATE SKIP LOCKED, so replicas share the work; the event is appended at the application stream's
version, so even a worker that raced past the lock (or a restart mid-way) cannot record it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from services.membership.handlers import Membership
from shared.store import Metadata

log = logging.getLogger("services.membership.overdue")

SCHEDULER = Metadata(actor="scheduler")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run_overdue_applications(pool: asyncpg.Pool, membership: Membership, now: datetime, limit: int = 100) -> int:
    """Record every pending application past its clock as overdue, one transaction each; returns how many."""
    handled, skipped = 0, list[UUID]()
    while handled + len(skipped) < limit:
        application_id: UUID | None = None
        try:
            async with pool.acquire() as conn, conn.transaction():
                # a clock the calendar could not set at submission is counted again once the period may be over
                # (never shorter in working days than in calendar days)
                row = await conn.fetchrow(
                    "SELECT item_id FROM work_queue WHERE kind = 'application' AND NOT overdue"
                    " AND (deadline <= $1 OR deadline IS NULL AND submitted_at <= $1 - make_interval(days => $3))"
                    " AND NOT (item_id = ANY($2::uuid[])) ORDER BY deadline NULLS LAST LIMIT 1 FOR UPDATE SKIP LOCKED",
                    now,
                    skipped,
                    membership.application_working_days,
                )
                if row is None:
                    break
                application_id = row["item_id"]
                recorded = await membership.mark_application_overdue(conn, application_id, now, SCHEDULER)
        except Exception as exc:
            if application_id is None:
                raise  # not about one application: the database itself
            # most likely a review (or another worker) won the race: the next round sees its outcome
            log.warning("application %s not marked overdue this round", application_id, extra={"error": repr(exc)})
            skipped.append(application_id)
            continue
        if not recorded:
            skipped.append(application_id)
            continue
        log.info("application overdue", extra={"application_id": str(application_id)})
        handled += 1
    return handled
