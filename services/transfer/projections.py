"""Transfer's read models, one small function per event; own events in the append's transaction,
membership's events in the inbox transaction. Every table can be rebuilt from the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from published import membership
from shared.directory import moved
from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

# moves members in the kernel's directory (tables shared with it: a rebuild of either replays both)
moves = Projection("moves", tables=["directory_members", "directory_moves"])
identities = Projection("identities", tables=["person_index"])
transfers = Projection("transfers", tables=["transfers", "transfer_steps", "deadlines"])
batches = Projection("batches", tables=["batches", "batch_items"])

ALL = [moves, identities, transfers, batches]

MEMBERSHIP = membership.SOURCE


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# --- the kernel's directory: a completed transfer moves the member at once (membership's echo comes later) ---


@moves.on("TransferCompleted")
def on_transfer_moved_member(e: Recorded) -> Statements:
    return moved(e.data["member_id"], e.data["to_org_id"], e.data["transfer_id"], e.recorded_at)


# --- identities: members' blind indexes, from membership's restricted topic ----------------------------


@identities.on("MemberIdentityIndexed", source=MEMBERSHIP)
def on_member_identity_indexed(e: Recorded) -> Statements:
    indexed = e.read_as(membership.MemberIdentityIndexed)
    return [
        stmt(
            "INSERT INTO person_index (member_id, id_blind_index) VALUES ($1, $2)"
            " ON CONFLICT (member_id) DO UPDATE SET id_blind_index = excluded.id_blind_index",
            indexed.member_id,
            indexed.id_blind_index,
        )
    ]


@identities.on("MemberJoined", source=MEMBERSHIP)
def on_member_joined_with_its_index(e: Recorded) -> Statements:
    # MemberJoined carried the index on the public topic before the restricted topic existed (no longer published,
    # so not in the published language): read as it was, for rebuilds
    if not e.data.get("id_blind_index"):
        return []
    return [
        stmt(
            "INSERT INTO person_index (member_id, id_blind_index) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING",
            e.data["member_id"],
            e.data["id_blind_index"],
        )
    ]


@identities.on("MemberIdentityIndexErased", source=MEMBERSHIP)
@identities.on("PersonalDataErased", source=MEMBERSHIP)
def on_identity_erased(e: Recorded) -> Statements:
    # an erased person can no longer be found by identity number (the consumer removes the other copies)
    return [stmt("DELETE FROM person_index WHERE member_id = $1", e.read_as(membership.MemberEvent).member_id)]


# --- transfers and their steps -------------------------------------------------------------------------


async def _step(
    conn: asyncpg.Connection, e: Recorded, step: str, by: str | None, org_id: object = None, reason: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO transfer_steps (transfer_id, version, step, by, org_id, reason, at)"
        " VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6, $7) ON CONFLICT DO NOTHING",
        e.data["transfer_id"],
        e.version,
        step,
        by,
        org_id,
        reason,
        e.recorded_at,
    )


async def _close(conn: asyncpg.Connection, e: Recorded, status: str, reason: str | None) -> None:
    await conn.execute(
        "UPDATE transfers SET status = $2, closed_reason = $3, updated_at = $4 WHERE transfer_id = $1::uuid",
        e.data["transfer_id"],
        status,
        reason,
        e.recorded_at,
    )
    # the scheduler may hold this row while it decides the same transfer: never wait for it (the loser of
    # the two appends rolls back; a row left behind is removed when it falls due)
    await conn.execute(
        "DELETE FROM deadlines WHERE transfer_id IN"
        " (SELECT transfer_id FROM deadlines WHERE transfer_id = $1::uuid FOR UPDATE SKIP LOCKED)",
        e.data["transfer_id"],
    )


@transfers.on("TransferRequested")
async def on_transfer_requested(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    expires_at = _time(d["expires_at"])
    await conn.execute(
        """
        INSERT INTO transfers (transfer_id, member_id, member_no, from_org_id, to_org_id, status, reason, requested_by,
                               requested_at, expires_at, batch_id, updated_at, requester)
        VALUES ($1::uuid, $2::uuid, $3, $4::uuid, $5::uuid, 'requested', $6, $7, $8, $9, $10::uuid, $11, $12)
        ON CONFLICT (transfer_id) DO NOTHING
        """,
        d["transfer_id"],
        d["member_id"],
        d.get("member_no"),
        d["from_org_id"],
        d["to_org_id"],
        d["reason"],
        d["requested_by"],
        _time(d["requested_at"]),
        expires_at,
        d.get("batch_id"),
        e.recorded_at,
        d.get("requester"),
    )
    await _step(conn, e, "requested", d["requested_by"], d["from_org_id"], d["reason"])
    await conn.execute(
        "INSERT INTO deadlines (transfer_id, due_at) VALUES ($1::uuid, $2) ON CONFLICT (transfer_id) DO NOTHING",
        d["transfer_id"],
        expires_at,
    )


@transfers.on("TransferReleased")
async def on_transfer_released(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        "UPDATE transfers SET status = 'released', updated_at = $2 WHERE transfer_id = $1::uuid",
        d["transfer_id"],
        e.recorded_at,
    )
    await _step(conn, e, "released", d["by"], d.get("on_behalf_of") or d["from_org_id"])


@transfers.on("TransferAccepted")
async def on_transfer_accepted(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await _step(conn, e, "accepted", d["by"], d.get("on_behalf_of") or d["to_org_id"])


@transfers.on("TransferCompleted")
async def on_transfer_completed(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await _close(conn, e, "completed", None)
    await conn.execute(
        "UPDATE transfers SET completed_at = $2, duration_seconds = $3 WHERE transfer_id = $1::uuid",
        d["transfer_id"],
        _time(d["completed_at"]),
        d["duration_seconds"],
    )
    await _step(conn, e, "completed", None, d["to_org_id"])


@transfers.on("TransferRejected")
async def on_transfer_rejected(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await _close(conn, e, "rejected", d["reason"])
    await _step(conn, e, "rejected", d["by"], d["org_id"], d["reason"])


@transfers.on("TransferCancelled")
async def on_transfer_cancelled(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await _close(conn, e, "cancelled", d["reason"])
    await _step(conn, e, "cancelled", d["by"], None, d["reason"])


@transfers.on("TransferEscalated")
async def on_transfer_escalated(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    expires_at = _time(d["expires_at"])
    await conn.execute(
        "UPDATE transfers SET escalated_to = $2::uuid, expires_at = $3, updated_at = $4 WHERE transfer_id = $1::uuid",
        d["transfer_id"],
        d["escalated_to_org_id"],
        expires_at,
        e.recorded_at,
    )
    await conn.execute(
        "INSERT INTO deadlines (transfer_id, due_at) VALUES ($1::uuid, $2)"
        " ON CONFLICT (transfer_id) DO UPDATE SET due_at = excluded.due_at",
        d["transfer_id"],
        expires_at,
    )
    await _step(conn, e, "escalated", "scheduler", d["escalated_to_org_id"], d["reason"])


@transfers.on("TransferExpired")
async def on_transfer_expired(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await _close(conn, e, "expired", d["reason"])
    await _step(conn, e, "expired", "scheduler", d.get("escalated_to_org_id"), d["reason"])


# --- bulk batches --------------------------------------------------------------------------------------


@batches.on("BulkTransferRequested")
async def on_bulk_transfer_requested(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        "INSERT INTO batches (batch_id, to_org_id, reason, requested_by, status, total, requested_at)"
        " VALUES ($1::uuid, $2::uuid, $3, $4, 'pending', $5, $6) ON CONFLICT DO NOTHING",
        d["batch_id"],
        d["to_org_id"],
        d["reason"],
        d["requested_by"],
        len(d["member_ids"]),
        e.recorded_at,
    )
    await conn.execute(
        "INSERT INTO batch_items (batch_id, member_id, ordinal, status)"
        " SELECT $1::uuid, m.id, m.ordinal, 'pending' FROM unnest($2::uuid[]) WITH ORDINALITY AS m(id, ordinal)"
        " ON CONFLICT DO NOTHING",
        d["batch_id"],
        d["member_ids"],
    )


@batches.on("BulkTransferItemRequested")
def on_bulk_transfer_item_requested(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE batch_items SET status = 'requested', transfer_id = $3::uuid"
            " WHERE batch_id = $1::uuid AND member_id = $2::uuid",
            d["batch_id"],
            d["member_id"],
            d["transfer_id"],
        )
    ]


@batches.on("BulkTransferItemRefused")
def on_bulk_transfer_item_refused(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE batch_items SET status = 'refused', code = $3, reason = $4"
            " WHERE batch_id = $1::uuid AND member_id = $2::uuid",
            d["batch_id"],
            d["member_id"],
            d["code"],
            d["reason"],
        )
    ]


@batches.on("BulkTransferFinished")
def on_bulk_transfer_finished(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE batches SET status = 'finished', finished_at = $2 WHERE batch_id = $1::uuid",
            e.data["batch_id"],
            e.recorded_at,
        )
    ]
