"""Allocation handlers: lock, load the streams, decide, append (outbox rows ride along).

Race-freedom, as for quotas: every write about a member takes that member's transaction lock first (the same lock
redemptions take), so their per-period limit is checked and spent by one writer at a time. A first-come entry then
locks the allocation's row FOR UPDATE and reads the places taken, which the same transaction's projection updates:
entries to one allocation are given places one at a time, and the N+1st finds it full. A draw's entries lock the row
FOR SHARE and the draw FOR UPDATE, so no entry lands after the draw has read the entrants.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.servicecard import allocations
from services.servicecard.allocations import Mode
from shared.directory import covers
from shared.errors import NotFoundError
from shared.store import Appending, Metadata, Stream, StreamStore

Clock = Callable[[], datetime]
_MEMBER_LOCK = 21  # the same lock as services.servicecard.handlers: one writer per member at a time


def allocation_stream(allocation_id: UUID) -> str:
    return f"allocation-{allocation_id}"


def entries_stream(member_id: UUID, item_id: UUID, period: str) -> str:
    return f"entries-{member_id}-{item_id}-{period}"


def entitlements_stream(member_id: UUID) -> str:
    return f"entitlements-{member_id}"


async def entrants(conn: asyncpg.Connection, allocation_id: UUID) -> list[UUID]:
    """A draw's entrants from its `AllocationEntered` events, not from the `allocation_entries` read model: a row
    deleted there must not take a member out of the draw (issue 30). The events are append-only and hash-chained."""
    rows = await conn.fetch(
        "SELECT DISTINCT (data->>'member_id')::uuid AS member_id FROM events "
        "WHERE event_type = 'AllocationEntered' AND data->>'allocation_id' = $1::text",
        str(allocation_id),
    )
    return sorted((r["member_id"] for r in rows), key=str)


class Allocations:
    def __init__(self, store: StreamStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def _lock_member(self, conn: asyncpg.Connection, member_id: UUID) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _MEMBER_LOCK, str(member_id))

    async def _allocation(
        self, conn: asyncpg.Connection, allocation_id: UUID
    ) -> tuple[Stream, allocations.Allocation | None]:
        return await self.store.load_folded(conn, allocation_stream(allocation_id), allocations.fold_allocation)

    async def _entitlements(self, conn: asyncpg.Connection, member_id: UUID) -> tuple[Stream, allocations.Entitlements]:
        return await self.store.load_folded(conn, entitlements_stream(member_id), allocations.fold_entitlements)

    async def open(self, conn: asyncpg.Connection, cmd: allocations.OpenAllocation, meta: Metadata) -> str:
        """Open the allocation; returns the seed's commitment (empty for first come)."""
        item_known = bool(await conn.fetchval("SELECT 1 FROM catalog_items WHERE item_id = $1", cmd.item_id))
        seed = os.urandom(allocations.SEED_BYTES)
        events = allocations.open_allocation(cmd, self.clock(), item_known=item_known, seed=seed)
        await self.store.append(conn, Stream(allocation_stream(cmd.allocation_id)), events, meta)
        if cmd.mode is Mode.DRAW:
            await conn.execute(
                "INSERT INTO allocation_seeds (allocation_id, seed) VALUES ($1, $2)", cmd.allocation_id, seed
            )
            return allocations.commitment(seed)
        return ""

    async def enter(
        self, conn: asyncpg.Connection, allocation_id: UUID, member_id: UUID, meta: Metadata
    ) -> UUID | None:
        """An entry; for first come, the entitlement's id when a place was given."""
        await self._lock_member(conn, member_id)
        mode = await conn.fetchval("SELECT mode FROM allocations WHERE allocation_id = $1", allocation_id)
        if mode is None:
            raise NotFoundError("allocation", allocation_id)
        lock = "FOR UPDATE" if mode == Mode.FIRST_COME else "FOR SHARE"
        taken = await conn.fetchval(f"SELECT taken FROM allocations WHERE allocation_id = $1 {lock}", allocation_id)
        _, allocation = await self._allocation(conn, allocation_id)
        assert allocation is not None
        card = await conn.fetchrow(
            "SELECT status, org_id FROM cards WHERE member_id = $1 AND replaced_by IS NULL", member_id
        )
        in_subtree = False
        if card is not None:
            in_subtree = card["org_id"] == allocation.org_id or (
                await covers(conn, allocation.org_id, (card["org_id"],))
            ) == [True]
        entrant = allocations.Entrant(member_id, card is not None and card["status"] == "active", in_subtree)
        entries, entered = await self.store.load_folded(
            conn, entries_stream(member_id, allocation.item_id, allocation.period), allocations.fold_entries
        )
        held, granted = await self._entitlements(conn, member_id)
        entitlement_id = uuid4()
        events = allocations.enter(
            allocation,
            allocation_id,
            entrant,
            entered,
            granted,
            self.clock(),
            places_taken=int(taken),
            entitlement_id=entitlement_id,
        )
        batch: list[Appending] = [(entries, events[:1])]
        if len(events) > 1:
            batch.append((held, events[1:]))
        await self.store.append_streams(conn, batch, meta)
        return entitlement_id if allocation.mode is Mode.FIRST_COME else None

    async def draw(self, conn: asyncpg.Connection, allocation_id: UUID, meta: Metadata) -> list[UUID]:
        await conn.fetchval("SELECT 1 FROM allocations WHERE allocation_id = $1 FOR UPDATE", allocation_id)
        stream, allocation = await self._allocation(conn, allocation_id)
        if allocation is not None and allocation.drawn is not None:  # held already: the same answer again
            return list(allocation.drawn.winners)
        seed = await conn.fetchval("SELECT seed FROM allocation_seeds WHERE allocation_id = $1", allocation_id)
        places = allocation.places if allocation is not None else 0
        held, grants = allocations.hold_draw(
            allocation,
            allocation_id,
            self.clock(),
            seed=bytes(seed or b""),
            entries=await entrants(conn, allocation_id),
            entitlement_ids=[uuid4() for _ in range(places)],
        )
        batch: list[Appending] = [(stream, [held])]
        winners = sorted(grants, key=lambda g: str(g.member_id))
        for grant in winners:
            await self._lock_member(conn, grant.member_id)
        for grant in winners:
            member_stream, _ = await self._entitlements(conn, grant.member_id)
            batch.append((member_stream, [grant]))
        await self.store.append_streams(conn, batch, meta)
        return list(held.winners)

    async def use(self, conn: asyncpg.Connection, entitlement_id: UUID, meta: Metadata) -> UUID:
        member_id = await conn.fetchval("SELECT member_id FROM entitlements WHERE entitlement_id = $1", entitlement_id)
        if member_id is None:
            raise NotFoundError("entitlement", entitlement_id)
        await self._lock_member(conn, member_id)
        stream, held = await self._entitlements(conn, member_id)
        await self.store.append(
            conn, stream, allocations.use_entitlement(held, member_id, entitlement_id, self.clock()), meta
        )
        return entitlement_id

    async def due_draws(self, conn: asyncpg.Connection) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT allocation_id FROM allocations WHERE mode = 'draw' AND NOT drawn AND entries_close_at <= $1",
            self.clock(),
        )
        return [r["allocation_id"] for r in rows]

    async def members_with_expired(self, conn: asyncpg.Connection) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT DISTINCT member_id FROM entitlements WHERE status = 'granted' AND expires_at <= $1", self.clock()
        )
        return [r["member_id"] for r in rows]

    async def record_no_shows(self, conn: asyncpg.Connection, member_id: UUID, meta: Metadata) -> int:
        await self._lock_member(conn, member_id)
        stream, held = await self._entitlements(conn, member_id)
        events = allocations.record_no_shows(held, member_id, self.clock())
        if events:
            await self.store.append(conn, stream, events, meta)
        return len(events)

    # --- reads ---

    async def view(self, conn: asyncpg.Connection, allocation_id: UUID) -> dict[str, Any]:
        """The published allocation: for a draw, its commitment, and once drawn the seed, entries and winners."""
        row = await conn.fetchrow("SELECT * FROM allocations WHERE allocation_id = $1", allocation_id)
        if row is None:
            raise NotFoundError("allocation", allocation_id)
        view = {
            k: row[k]
            for k in (
                "allocation_id",
                "item_id",
                "org_id",
                "title",
                "mode",
                "places",
                "taken",
                "period",
                "limit_per_member",
                "entries_close_at",
                "seed_commitment",
                "drawn",
            )
        }
        _, allocation = await self._allocation(conn, allocation_id)
        if allocation is not None and allocation.drawn is not None:  # from the DrawHeld event and the entries' events
            drawn = allocation.drawn
            view |= {
                "seed": drawn.seed,
                "entries": [str(e) for e in await entrants(conn, allocation_id)],
                "entries_digest": drawn.entries_digest,
                "winners": [str(w) for w in drawn.winners],
                "ticket_rule": drawn.ticket_rule,
                "algorithm": "docs/allocations.md",
            }
        return view

    async def member_entitlements(self, conn: asyncpg.Connection, member_id: UUID) -> dict[str, Any]:
        rows = await conn.fetch(
            "SELECT entitlement_id, allocation_id, item_id, expires_at, status, banned_until FROM entitlements "
            "WHERE member_id = $1 ORDER BY expires_at",
            member_id,
        )
        return {"member_id": member_id, "items": [dict(r) for r in rows]}
