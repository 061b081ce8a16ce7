"""The dues service's views: a member's ledger (now or as of a time), cases with their clocks, reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from services.dues.domain import Account
from services.dues.handlers import POLICY_STREAM, account_stream, fold_stream, policies_of
from services.dues.policy import DEFAULT, Policy, in_force, month_of
from shared.errors import NotFoundError
from shared.store import StreamStore

JSON = dict[str, Any]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def policy_view(policy: Policy) -> JSON:
    return {
        "effective_from": policy.effective_from,
        "rate": str(policy.rate),
        "base_step": str(policy.base_step),
        "rounding": policy.rounding.value,
        "unpaid_months": policy.unpaid_months,
        "grace_days": policy.grace_days,
        "citation": policy.citation,
        "recorded_at": policy.recorded_at,
    }


def account_view(account: Account, policies: list[Policy], today: date) -> JSON:
    lines = [account.lines[m] for m in sorted(account.lines)]
    case = account.case
    clock = None
    if case is not None:
        clock = {
            "case_id": case.case_id,
            "opened_on": case.opened_on,
            "unpaid_months": [f"{m:%Y-%m}" for m in case.unpaid_months],
            "educated_on": case.educated_on,
            "grace_until": case.grace_until,
            "days_left": (case.grace_until - today).days if case.grace_until else None,
            "decision_possible_from": case.grace_until + timedelta(days=1) if case.grace_until else None,
            "waiting_for": "education"
            if case.educated_on is None
            else "grace_period"
            if case.grace_until is not None and today <= case.grace_until
            else "staff_decision",
        }
    return {
        "member_id": account.member_id,
        "member_no": account.member_no,
        "org_id": account.org_id,
        "status": account.status,
        "wage_base": _money(account.base_for(month_of(today))),
        "arrears": _money(account.arrears()),
        "unpaid_run": len(account.unpaid_run(before=month_of(today))),
        "case": clock,
        "policy": policy_view(in_force(policies, month_of(today))),
        "months": [
            {
                "month": f"{line.month:%Y-%m}",
                "state": line.state,
                "expected": _money(line.expected if line.owed else Decimal(0)),
                "paid": _money(line.paid),
                "arrears": _money(line.arrears),
            }
            for line in lines
        ],
    }


async def member_dues(conn: asyncpg.Connection, store: StreamStore, member_id: UUID, as_of: datetime | None) -> JSON:
    """The ledger as recorded (now, or as of a time: only what had been recorded by then, under the policies set by
    then), so nothing set later, a policy included, changes what it shows for a past time."""
    stream = await store.load(conn, account_stream(member_id))
    account = fold_stream(stream, as_of)
    if account is None:
        raise NotFoundError("member", member_id)
    policies = policies_of(await store.load(conn, POLICY_STREAM), as_of)
    today = (as_of or datetime.now(UTC)).date()
    return {**account_view(account, policies, today), "as_of": as_of}


async def policies(conn: asyncpg.Connection, store: StreamStore) -> JSON:
    listed = policies_of(await store.load(conn, POLICY_STREAM))
    today = datetime.now(UTC).date()
    return {
        "in_force": policy_view(in_force(listed, month_of(today))),
        "items": [policy_view(DEFAULT), *(policy_view(p) for p in listed)],
    }


async def cases(conn: asyncpg.Connection, org_id: UUID | None, open_only: bool) -> list[JSON]:
    """Six-month cases in the organisation's subtree (every one when none is named), with their clocks."""
    rows = await conn.fetch(
        "SELECT c.*, a.member_no FROM dues_cases c JOIN dues_accounts a USING (member_id)"
        " WHERE ($1::uuid IS NULL OR c.org_id IN (SELECT org_id FROM directory_subtree($1::uuid)))"
        " AND (NOT $2 OR c.closed_on IS NULL) ORDER BY c.opened_on, c.case_id LIMIT 1000",
        org_id,
        open_only,
    )
    today = datetime.now(UTC).date()
    return [
        {
            "case_id": r["case_id"],
            "member_id": r["member_id"],
            "member_no": r["member_no"],
            "org_id": r["org_id"],
            "opened_on": r["opened_on"],
            "unpaid_months": [f"{m:%Y-%m}" for m in r["unpaid_months"]],
            "educated_on": r["educated_on"],
            "grace_until": r["grace_until"],
            "days_left": (r["grace_until"] - today).days if r["grace_until"] else None,
            "closed_on": r["closed_on"],
            "close_reason": r["close_reason"],
        }
        for r in rows
    ]


async def dues_report(conn: asyncpg.Connection, org_id: UUID | None, first: date, last: date) -> JSON:
    """Dues expected, collected and in arrears by month and organisation, for the subtree."""
    # from the organisations' monthly totals (projections.py): organisations x months rows, whatever the members
    rows = await conn.fetch(
        """
        SELECT org_id, month, expected, collected, arrears, members_liable FROM dues_month_totals
        WHERE month BETWEEN $2 AND $3
          AND ($1::uuid IS NULL OR org_id IN (SELECT org_id FROM directory_subtree($1::uuid)))
        ORDER BY month, org_id
        """,
        org_id,
        first,
        last,
    )
    return {
        "org_id": org_id,
        "items": [
            {
                "org_id": r["org_id"],
                "month": f"{r['month']:%Y-%m}",
                "expected": _money(r["expected"]),
                "collected": _money(r["collected"]),
                "arrears": _money(r["arrears"]),
                "members_liable": r["members_liable"],
            }
            for r in rows
        ],
    }


STATUSES = ("active", "retained", "suspended", "lapsed", "terminated")


async def members_by_status(conn: asyncpg.Connection, org_id: UUID, as_of: date) -> JSON:
    """Members of the subtree by status as of a date: each member's last status and organisation on that day.

    Its cost grows with the members the subtree ever had (found by the history's organisation index), not with the
    province: a county's count reads its own members' histories."""
    rows = await conn.fetch(
        """
        WITH subtree AS (SELECT org_id FROM directory_subtree($1::uuid)),
        ever AS (
            SELECT DISTINCT h.member_id FROM member_status_history h JOIN subtree USING (org_id) WHERE h.since <= $2
        )
        SELECT status, count(*) AS n FROM (
            SELECT DISTINCT ON (h.member_id) h.org_id, h.status
            FROM ever JOIN member_status_history h USING (member_id)
            WHERE h.since <= $2 ORDER BY h.member_id, h.since DESC, h.position DESC
        ) latest
        WHERE org_id IN (SELECT org_id FROM subtree)
        GROUP BY status
        """,
        org_id,
        as_of,
    )
    by_status = dict.fromkeys(STATUSES, 0) | {r["status"]: r["n"] for r in rows}
    return {"org_id": org_id, "as_of": as_of, "total": sum(by_status.values()), "by_status": by_status}


async def remittance(conn: asyncpg.Connection, remittance_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM checkoff_remittances WHERE remittance_id = $1", remittance_id)
    if row is None:
        raise NotFoundError("remittance", remittance_id)
    return {**dict(row), "month": f"{row['month']:%Y-%m}", "total": _money(row["total"])}
