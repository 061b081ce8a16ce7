"""The directory: organisations and members as union.membership.v1 tells them, kept by every service.

One read model instead of a copy per service (tables and SQL functions in shared/migrations/0005_directory.sql):
staff tokens are checked against it (`covers`), electorates and routing read it (`subtree`, `ancestors`,
`nearest_common_parent`). Membership projects its own events into it; the others project the ones they consume.
No personal data: a member is a number, an organisation and a status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from published import membership
from published.membership import SOURCE, STATUS_CHANGES, MemberStatus
from shared.projections import Projection, Statements, batch_handler, stmt
from shared.store import Recorded

MEMBERSHIP_SOURCE = SOURCE

directory = Projection("directory", tables=["directory_orgs", "directory_members", "directory_moves"])


@directory.on("OrganizationRegistered", source=MEMBERSHIP_SOURCE)
def on_organization_registered(e: Recorded) -> Statements:
    org = e.read_as(membership.OrganizationRegistered)
    return [
        stmt(
            "INSERT INTO directory_orgs (org_id, parent_id, name, type, subtype, region_code, credit_code, industry,"
            " accepts_members) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (org_id) DO NOTHING",
            org.org_id,
            org.parent_id,
            org.name,
            org.type,
            org.subtype,
            org.region_code,
            org.credit_code,
            org.industry,
            org.accepts_members,
        )
    ]


@directory.on("OrganizationDissolved", source=MEMBERSHIP_SOURCE)
def on_organization_dissolved(e: Recorded) -> Statements:
    dissolved = e.read_as(membership.OrganizationDissolved)
    return [stmt("UPDATE directory_orgs SET status = 'dissolved' WHERE org_id = $1", dissolved.org_id)]


@directory.on("MemberJoined", source=MEMBERSHIP_SOURCE)
@batch_handler
async def on_members_joined(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    """A run of joins (an import, a consumer's batch) in one multi-row statement."""
    joined = [e.read_as(membership.MemberJoined) for e in entries]
    await conn.execute(
        "INSERT INTO directory_members (member_id, member_no, org_id, status, updated_at)"
        " SELECT m, n, o, 'active', u FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[])"
        " AS x(m, n, o, u) ON CONFLICT (member_id) DO NOTHING",
        [j.member_id for j in joined],
        [j.member_no for j in joined],
        [j.org_id for j in joined],
        [e.recorded_at for e in entries],
    )


def _status(status: MemberStatus) -> Callable[[Recorded], Statements]:
    def on_status(e: Recorded) -> Statements:
        return [
            stmt(
                "UPDATE directory_members SET status = $2, updated_at = $3 WHERE member_id = $1",
                e.read_as(membership.MemberEvent).member_id,
                status.value,
                e.recorded_at,
            )
        ]

    return on_status


# retention's holder, where it differs from the member's organisation, comes as MemberOrganizationChanged
for _event, _to in STATUS_CHANGES.items():
    directory.on(_event, source=MEMBERSHIP_SOURCE)(_status(_to))


@directory.on("MemberOrganizationChanged", source=MEMBERSHIP_SOURCE)
def on_member_organization_changed(e: Recorded) -> Statements:
    # the echo of a move this service applied itself (`moved`) is skipped: applying it again could step back over
    # a later move that membership has not echoed yet
    move = e.read_as(membership.MemberOrganizationChanged)
    return [
        stmt(
            "UPDATE directory_members SET org_id = $2, updated_at = $3 WHERE member_id = $1"
            " AND NOT EXISTS (SELECT 1 FROM directory_moves WHERE transfer_id = $4)",
            move.member_id,
            move.to_org_id,
            e.recorded_at,
            move.transfer_id,
        )
    ]


def moved(member_id: object, to_org_id: object, transfer_id: object, at: datetime) -> Statements:
    """A move this service decided itself (a completed transfer), applied before membership echoes it."""
    return [
        stmt(
            "UPDATE directory_members SET org_id = $2::uuid, updated_at = $3 WHERE member_id = $1::uuid",
            member_id,
            to_org_id,
            at,
        ),
        stmt("INSERT INTO directory_moves (transfer_id) VALUES ($1::uuid) ON CONFLICT DO NOTHING", transfer_id),
    ]


# --- asking ---------------------------------------------------------------------------------------------------

_COVERS = """
SELECT t.target = $2::uuid OR EXISTS (SELECT 1 FROM directory_ancestors(t.target) a WHERE a.org_id = $2::uuid)
FROM unnest($1::uuid[]) WITH ORDINALITY AS t(target, n) ORDER BY t.n
"""

_NEAREST_COMMON_PARENT = """
SELECT a.org_id FROM directory_ancestors($1::uuid) a
JOIN directory_ancestors($2::uuid) b ON b.org_id = a.org_id AND b.depth > 0
JOIN directory_orgs o ON o.org_id = a.org_id AND o.status = 'active'
WHERE a.depth > 0
ORDER BY a.depth LIMIT 1
"""


async def covers(conn: asyncpg.Connection | asyncpg.Pool, staff_org: UUID, orgs: Sequence[UUID]) -> list[bool]:
    """For each organisation, whether it is `staff_org` or below it."""
    return [bool(r[0]) for r in await conn.fetch(_COVERS, list(orgs), staff_org)]


async def subtree(conn: asyncpg.Connection | asyncpg.Pool, org_id: UUID) -> list[UUID]:
    """The organisation and every one below it."""
    return [r[0] for r in await conn.fetch("SELECT org_id FROM directory_subtree($1)", org_id)]


async def nearest_common_parent(conn: asyncpg.Connection | asyncpg.Pool, a: UUID, b: UUID) -> UUID | None:
    """The closest active organisation above both `a` and `b` (neither of them itself)."""
    found: UUID | None = await conn.fetchval(_NEAREST_COMMON_PARENT, a, b)
    return found
