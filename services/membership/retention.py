"""Retained membership (保留会籍), its restoration, and the lapse staff decided on the dues service's case."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import asyncpg

from services.membership import domain
from services.membership.handlers import Membership
from shared.store import Metadata


async def retain(
    membership: Membership,
    conn: asyncpg.Connection,
    member_id: UUID,
    reason: str,
    held_by: UUID | None,
    since: date,
    meta: Metadata,
) -> None:
    stream, member = await membership.member(conn, member_id)
    holder, above = None, False
    if held_by is not None:
        _, holder = await membership.organization(conn, held_by)
        above = bool(
            await conn.fetchval(
                "SELECT 1 FROM directory_ancestors($1::uuid) WHERE org_id = $2::uuid AND depth > 0",
                member.org_id,
                held_by,
            )
        )
    await membership.store.append(conn, stream, domain.retain(member, reason, holder, above, since), meta)


async def restore(
    membership: Membership, conn: asyncpg.Connection, member_id: UUID, reason: str, meta: Metadata
) -> None:
    stream, member = await membership.member(conn, member_id)
    await membership.store.append(conn, stream, domain.restore(member, reason), meta)


async def lapse(
    membership: Membership,
    conn: asyncpg.Connection,
    member_id: UUID,
    case_id: UUID | None,
    reason: str,
    decided_by: str,
    meta: Metadata,
) -> None:
    stream, member = await membership.member(conn, member_id)
    await membership.store.append(conn, stream, domain.lapse(member, case_id, reason, decided_by), meta)
