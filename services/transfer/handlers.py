"""Transfer's command handlers: load the stream, decide, append with the expected version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from services.transfer import domain
from services.transfer.domain import Batch, MemberInfo, OrgInfo, Transfer
from shared import routing
from shared.causation import caused_by
from shared.directory import nearest_common_parent
from shared.errors import DomainError
from shared.routing import Candidate
from shared.store import Metadata, Stream, StreamStore

Clock = Callable[[], datetime]


def transfer_stream(transfer_id: UUID) -> str:
    return f"transfer-{transfer_id}"


def batch_stream(batch_id: UUID) -> str:
    return f"batch-{batch_id}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Transfers:
    def __init__(
        self, store: StreamStore, *, expires_in: timedelta, escalation_window: timedelta, clock: Clock = _utcnow
    ) -> None:
        self.store = store
        self.expires_in = expires_in
        self.escalation_window = escalation_window
        self.clock = clock

    # --- what the service knows ---

    async def transfer(self, conn: asyncpg.Connection, transfer_id: UUID) -> tuple[Stream, Transfer]:
        stream_id = transfer_stream(transfer_id)
        return await self.store.load_existing(conn, stream_id, domain.fold, Transfer, "transfer", transfer_id)

    async def batch(self, conn: asyncpg.Connection, batch_id: UUID) -> tuple[Stream, Batch]:
        return await self.store.load_existing(conn, batch_stream(batch_id), domain.fold, Batch, "batch", batch_id)

    @staticmethod
    async def member_info(conn: asyncpg.Connection, member_id: UUID) -> MemberInfo | None:
        row = await conn.fetchrow(
            "SELECT member_id, org_id, status, member_no FROM directory_members WHERE member_id = $1", member_id
        )
        return MemberInfo(row["member_id"], row["org_id"], row["status"], row["member_no"]) if row else None

    @staticmethod
    async def org_info(conn: asyncpg.Connection, org_id: UUID) -> OrgInfo | None:
        row = await conn.fetchrow(
            "SELECT org_id, accepts_members, status FROM directory_orgs WHERE org_id = $1", org_id
        )
        return OrgInfo(row["org_id"], row["accepts_members"], row["status"] == "dissolved") if row else None

    @staticmethod
    async def open_transfer(conn: asyncpg.Connection, member_id: UUID) -> UUID | None:
        value = await conn.fetchval(
            "SELECT transfer_id FROM transfers WHERE member_id = $1 AND status IN ('requested', 'released')",
            member_id,
        )
        return value if isinstance(value, UUID) else None

    @staticmethod
    async def candidates(conn: asyncpg.Connection, employer_credit_code: str, region_code: str) -> list[Candidate]:
        rows = await conn.fetch(
            "SELECT * FROM directory_orgs WHERE credit_code = $1 OR region_code = ANY($2::text[])",
            employer_credit_code,
            routing.region_levels(region_code),
        )
        return [
            Candidate(
                r["org_id"],
                r["type"],
                r["region_code"],
                r["subtype"],
                r["credit_code"],
                r["industry"],
                r["accepts_members"],
                r["status"] == "active",
            )
            for r in rows
        ]

    # --- commands ---

    async def request(
        self,
        conn: asyncpg.Connection,
        member_id: UUID,
        to_org_id: UUID,
        reason: str,
        requested_by: str,
        meta: Metadata,
        *,
        transfer_id: UUID | None = None,
        batch_id: UUID | None = None,
    ) -> UUID:
        # one request per member at a time: a second one waits here, then sees the first as open
        await conn.execute("SELECT pg_advisory_xact_lock(6, hashtext($1))", str(member_id))
        cmd = domain.RequestTransfer(
            transfer_id or uuid4(),
            member_id,
            to_org_id,
            reason,
            requested_by,
            self.clock(),
            self.expires_in,
            batch_id,
            requester=meta.actor,
        )
        member = await self.member_info(conn, member_id)
        target = await self.org_info(conn, to_org_id)
        events = domain.request_transfer(cmd, member, target, await self.open_transfer(conn, member_id))
        await self.store.append(conn, Stream(transfer_stream(cmd.transfer_id)), events, meta)
        return cmd.transfer_id

    async def release(
        self, conn: asyncpg.Connection, transfer_id: UUID, by: str, org_id: UUID | None, meta: Metadata
    ) -> None:
        stream, t = await self.transfer(conn, transfer_id)
        await self.store.append(conn, stream, domain.release(t, domain.ReleaseTransfer(by, org_id)), meta)

    async def accept(
        self, conn: asyncpg.Connection, transfer_id: UUID, by: str, org_id: UUID | None, meta: Metadata
    ) -> None:
        stream, t = await self.transfer(conn, transfer_id)
        cmd = domain.AcceptTransfer(by, self.clock(), org_id)
        member = await self.member_info(conn, t.member_id)
        events = domain.accept(t, cmd, member, await self.org_info(conn, t.to_org_id))
        await self.store.append(conn, stream, events, meta)

    async def reject(
        self, conn: asyncpg.Connection, transfer_id: UUID, by: str, reason: str, org_id: UUID | None, meta: Metadata
    ) -> None:
        stream, t = await self.transfer(conn, transfer_id)
        await self.store.append(conn, stream, domain.reject(t, domain.RejectTransfer(by, reason, org_id)), meta)

    async def cancel(
        self, conn: asyncpg.Connection, transfer_id: UUID, by: str, reason: str | None, meta: Metadata
    ) -> None:
        stream, t = await self.transfer(conn, transfer_id)
        cmd = domain.CancelTransfer(by, reason) if reason else domain.CancelTransfer(by)
        await self.store.append(conn, stream, domain.cancel(t, cmd), meta)

    async def withdraw_open(self, conn: asyncpg.Connection, member_id: UUID, reason: str, meta: Metadata) -> None:
        transfer_id = await self.open_transfer(conn, member_id)
        if transfer_id is not None:
            stream, t = await self.transfer(conn, transfer_id)
            await self.store.append(conn, stream, domain.withdraw(t, meta.actor, reason), meta)

    # --- the scheduler's step ---

    async def on_deadline(self, conn: asyncpg.Connection, transfer_id: UUID, meta: Metadata) -> str:
        """Escalate or expire a transfer past its deadline; the caller holds its `deadlines` row."""
        stream, state = await self.store.load_folded(conn, transfer_stream(transfer_id), domain.fold)
        if not isinstance(state, Transfer) or not state.open:
            await conn.execute("DELETE FROM deadlines WHERE transfer_id = $1", transfer_id)
            return "closed"
        parent = None
        if state.escalated_to is None:
            parent = await nearest_common_parent(conn, state.from_org_id, state.to_org_id)
        events = domain.on_deadline(state, self.clock(), parent, self.escalation_window)
        if not events:  # not due after all: keep the row in step with the stream
            await conn.execute("UPDATE deadlines SET due_at = $2 WHERE transfer_id = $1", transfer_id, state.due_at)
            return "not_due"
        # the clock ran out on the transfer as its last event left it: that event is the cause
        await self.store.append(conn, stream, events, caused_by(stream.events[-1], meta.actor))
        return events[0].event_name()

    # --- bulk transfers ---

    async def request_bulk(
        self,
        conn: asyncpg.Connection,
        member_ids: list[UUID],
        to_org_id: UUID,
        reason: str,
        requested_by: str,
        meta: Metadata,
    ) -> UUID:
        cmd = domain.RequestBulkTransfer(uuid4(), member_ids, to_org_id, reason, requested_by, requester=meta.actor)
        events = domain.request_bulk(cmd, await self.org_info(conn, to_org_id))
        await self.store.append(conn, Stream(batch_stream(cmd.batch_id)), events, meta)
        return cmd.batch_id

    async def process_batch(self, conn: asyncpg.Connection, batch_id: UUID, chunk: int) -> int:
        """Request the transfers of the next `chunk` pending members, recording each outcome in the batch."""
        stream, batch = await self.batch(conn, batch_id)
        # members in id order: two chunks running at once take their members' locks in one order
        members = sorted(batch.pending[:chunk], key=str)
        actor = batch.requester or batch.requested_by  # batches from before requesters were recorded: the label
        meta = caused_by(stream.events[0], actor)  # each transfer follows from the bulk request, in its chain
        for member_id in members:
            try:
                async with conn.transaction():  # a savepoint: a refused member leaves nothing behind
                    transfer_id = await self.request(
                        conn, member_id, batch.to_org_id, batch.reason, batch.requested_by, meta, batch_id=batch_id
                    )
            except DomainError as exc:
                events = domain.record_refused(batch, member_id, exc.code, exc.message)
            else:
                events = domain.record_requested(batch, member_id, transfer_id)
            await self.store.append(conn, stream, events, meta)
            for event in events:
                state = domain.evolve(batch, event)
                assert isinstance(state, Batch)
                batch = state
        return len(members)
