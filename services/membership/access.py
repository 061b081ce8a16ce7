"""Who may do what in membership: one table, checked by every route (shared.auth.Guard).

Staff act on their organisation and everything below it; a member reads their own record; system
integrations read what their scopes grant. Submitting an application and reading its status stay public:
a worker applies without an account and keeps the (unguessable) application id the answer gave them.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Guard, Rule, Target
from shared.errors import NotFoundError

guard = Guard(
    {
        "organization.register": Rule(staff=True),  # under an organisation the staff covers; roots: admins
        "organization.read": Rule(anyone=True),
        "organization.roster": Rule(staff=True, scope="members:read", audit=True),
        "organization.stats": Rule(staff=True, scope="stats:read"),
        "organization.dissolve": Rule(staff=True),
        "founding.read": Rule(staff=True, scope="stats:read"),
        "application.review": Rule(staff=True),
        "member.read": Rule(staff=True, member=True, scope="members:read", audit=True),
        "member.personal_data": Rule(staff=True, member=True, audit=True),
        "member.history": Rule(staff=True, member=True, audit=True),
        "member.change": Rule(staff=True),
        "member.erase": Rule(staff=True),
    }
)


def organization(org_id: UUID | None) -> Target:
    return Target(orgs=(org_id,) if org_id else (), label=f"organization:{org_id}")


async def application(pool: asyncpg.Pool, application_id: UUID) -> Target:
    org_id = await pool.fetchval("SELECT org_id FROM applications WHERE application_id = $1", application_id)
    if org_id is None:
        raise NotFoundError("application", application_id)
    return Target(orgs=(org_id,), label=f"application:{application_id}")


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    org_id = await pool.fetchval("SELECT org_id FROM members WHERE member_id = $1", member_id)
    if org_id is None:
        raise NotFoundError("member", member_id)
    return Target(orgs=(org_id,), member_id=member_id, label=f"member:{member_id}")
