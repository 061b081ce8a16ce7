"""Who may do what in membership: one table, checked by every route (shared.auth.Guard).

Staff act on their organisation and everything below it; a member reads their own record; system
integrations read what their scopes grant. Submitting an application and reading its status stay public:
a worker applies without an account and keeps the (unguessable) application id the answer gave them.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Guard, Rule, Target, target_of

guard = Guard(
    {
        "organization.register": Rule(staff=True),  # under an organisation the staff covers; roots: admins
        "organization.read": Rule(anyone=True, scope="organizations:read"),
        "organization.roster": Rule(staff=True, scope="members:read"),  # audited per member listed: api.get_roster
        "organization.stats": Rule(staff=True, scope="stats:read"),
        "organization.dissolve": Rule(staff=True),
        "founding.read": Rule(staff=True, scope="stats:read"),
        "application.review": Rule(staff=True),
        "member.read": Rule(staff=True, member=True, scope="members:read", audit=True),
        "member.personal_data": Rule(staff=True, member=True, audit=True),
        "member.history": Rule(staff=True, member=True, audit=True),
        "member.change": Rule(staff=True),
        "member.erase": Rule(staff=True),
        "organization.search": Rule(anyone=True, scope="organizations:read"),
        "organization.queue": Rule(staff=True),  # what waits for staff: their organisation, or one above it
        "member.overview": Rule(staff=True, member=True, audit=True),
        "member.lookup": Rule(staff=True),  # by member number, within the staff's subtree
        "member.lookup_by_id_number": Rule(staff=True, audit=True),  # through the blind index: a read of personal data
        "calendar.read": Rule(anyone=True, scope="calendars:read"),  # what the clocks are counted on
        "calendar.load": Rule(),  # a year's notice: admins only
    }
)


async def application(pool: asyncpg.Pool, application_id: UUID) -> Target:
    sql = "SELECT org_id FROM applications WHERE application_id = $1"
    return await target_of(pool, sql, application_id, "application", f"application:{application_id}")


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM members WHERE member_id = $1"
    return await target_of(pool, sql, member_id, "member", f"member:{member_id}")
