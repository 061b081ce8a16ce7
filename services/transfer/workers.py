"""Background work that survives restarts: its state is rows in the database, never in-memory timers.

The deadline scheduler claims due rows of `deadlines` with FOR UPDATE SKIP LOCKED, so replicas share the
work without doing any twice; the bulk worker does the same with pending rows of `batches`.
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from services.transfer.handlers import Transfers
from shared.store import Metadata

log = logging.getLogger("services.transfer.workers")

SCHEDULER = Metadata(actor="scheduler")


async def run_due_deadlines(pool: asyncpg.Pool, transfers: Transfers, limit: int = 100) -> int:
    """Escalate or expire every transfer whose deadline passed, one transaction per transfer."""
    handled, failed = 0, list[UUID]()
    while handled + len(failed) < limit:
        transfer_id: UUID | None = None
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT transfer_id FROM deadlines WHERE due_at <= $1 AND NOT (transfer_id = ANY($2::uuid[]))"
                    " ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    transfers.clock(),
                    failed,
                )
                if row is None:
                    break
                transfer_id = row["transfer_id"]
                outcome = await transfers.on_deadline(conn, transfer_id, SCHEDULER)
        except Exception as exc:
            if transfer_id is None:
                raise  # not about one transfer: the database itself
            # most likely a command on the same transfer won the race: the next round sees its outcome
            log.warning("deadline of transfer %s not handled this round", transfer_id, extra={"error": repr(exc)})
            failed.append(transfer_id)
            continue
        log.info("transfer deadline handled", extra={"transfer_id": str(transfer_id), "outcome": outcome})
        handled += 1
    return handled


async def run_pending_batches(pool: asyncpg.Pool, transfers: Transfers, chunk: int) -> int:
    """Advance pending bulk batches by one chunk each per transaction until none is left."""
    processed = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT batch_id FROM batches WHERE status = 'pending' ORDER BY requested_at LIMIT 1"
                " FOR UPDATE SKIP LOCKED"
            )
            if row is None:
                return processed
            done = await transfers.process_batch(conn, row["batch_id"], chunk)
        if done == 0:
            return processed
        processed += done
