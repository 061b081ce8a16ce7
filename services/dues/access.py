"""Who may do what in the dues service: one table, checked by every route (shared.auth.Guard).

A member reads their own ledger and case (the clock is visible to them) and pays online; staff of the member's
organisation (or above) declare wage bases, exempt, record the education contact and decide a lapse; policies are
the admins'. A payroll or finance system holding `dues:write` may pay and import check-off remittances."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Guard, Rule, Target, target_of

guard = Guard(
    {
        "policy.read": Rule(anyone=True, scope="dues:read"),
        "policy.set": Rule(),  # admins only: a policy binds the whole federation
        "dues.read": Rule(staff=True, member=True, scope="dues:read", audit=True),
        "dues.pay": Rule(staff=True, member=True, scope="dues:write"),
        "dues.wage_base": Rule(staff=True, scope="dues:write"),
        "dues.exempt": Rule(staff=True),
        "case.read": Rule(staff=True, member=True, scope="dues:read"),
        "case.act": Rule(staff=True),
        "checkoff.import": Rule(staff=True, scope="dues:write"),
        "report.read": Rule(staff=True, scope="stats:read"),
    }
)


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM dues_accounts WHERE member_id = $1"
    return await target_of(pool, sql, member_id, "member", f"member:{member_id}")


async def case(pool: asyncpg.Pool, case_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM dues_cases WHERE case_id = $1"
    return await target_of(pool, sql, case_id, "case", f"case:{case_id}")


async def remittance(pool: asyncpg.Pool, remittance_id: UUID) -> Target:
    sql = "SELECT org_id FROM checkoff_remittances WHERE remittance_id = $1"
    return await target_of(pool, sql, remittance_id, "remittance", f"remittance:{remittance_id}")
