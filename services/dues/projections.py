"""The dues service's read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

import json

from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

ledger = Projection(
    "ledger",
    tables=[
        "dues_accounts",
        "dues_ledger",
        "dues_month_totals",
        "dues_payments",
        "dues_cases",
        "member_status_history",
    ],
)
policies = Projection("policies", tables=["dues_policies"])
remittances = Projection("remittances", tables=["checkoff_remittances"])

ALL = [ledger, policies, remittances]

ENDED_THROUGH = "9999-12-01"  # an ended account is never assessed again


@policies.on("DuesPolicySet")
def on_dues_policy_set(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO dues_policies (policy_id, effective_from, rate, base_step, rounding, unpaid_months,"
            " grace_days, citation, recorded_at)"
            " VALUES ($1::uuid, $2::text::date, $3::text::numeric, $4::text::numeric, $5, $6, $7, $8,"
            " $9) ON CONFLICT DO NOTHING",
            d["policy_id"],
            d["effective_from"],
            d["rate"],
            d["base_step"],
            d["rounding"],
            d["unpaid_months"],
            d["grace_days"],
            d["citation"],
            e.recorded_at,
        )
    ]


@ledger.on("DuesAccountOpened")
def on_dues_account_opened(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO dues_accounts (member_id, member_no, org_id, status, opened_on, updated_at)"
            " VALUES ($1::uuid, $2, $3::uuid, 'active', $4::text::date, $5) ON CONFLICT DO NOTHING",
            d["member_id"],
            d["member_no"],
            d["org_id"],
            d["opened_on"],
            e.recorded_at,
        ),
        stmt(
            "INSERT INTO member_status_history (member_id, position, org_id, status, since)"
            " VALUES ($1::uuid, $2, $3::uuid, 'active', $4::text::date) ON CONFLICT DO NOTHING",
            d["member_id"],
            e.position,
            d["org_id"],
            d["joined_at"],
        ),
    ]


@ledger.on("MemberStatusFollowed")
def on_member_status_followed(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE dues_accounts SET status = $2, org_id = $3::uuid, updated_at = $4 WHERE member_id = $1::uuid",
            d["member_id"],
            d["status"],
            d["org_id"],
            e.recorded_at,
        ),
        stmt(
            "INSERT INTO member_status_history (member_id, position, org_id, status, since)"
            " VALUES ($1::uuid, $2, $3::uuid, $4, $5::text::date) ON CONFLICT DO NOTHING",
            d["member_id"],
            e.position,
            d["org_id"],
            d["status"],
            d["on"],
        ),
    ]


@ledger.on("WageBaseDeclared")
def on_wage_base_declared(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE dues_accounts SET wage_base = $2::text::numeric, updated_at = $3 WHERE member_id = $1::uuid",
            e.data["member_id"],
            e.data["monthly_base"],
            e.recorded_at,
        )
    ]


# --- the ledger, and with each change of one of its rows its organisation's month (dues_month_totals) ---------


def _counts(row: str) -> list[str]:
    """What a ledger row counts for in the report: expected, collected, arrears, members liable."""
    live = f"({row}.liable AND NOT {row}.exempt)"
    return [
        f"CASE WHEN {live} THEN coalesce({row}.expected, 0) ELSE 0 END",
        f"{row}.paid",
        f"CASE WHEN {live} THEN greatest(coalesce({row}.expected, 0) - {row}.paid, 0) ELSE 0 END",
        f"{live}::int",
    ]


def _totals(changed: str) -> str:
    """`WITH <changed>` (CTEs ending in `new`, the rows as written, and `old`, as they were, if any), then the
    difference added to each organisation's month."""
    if "old AS" in changed:
        difference = ", ".join(f"({n}) - ({o})" for n, o in zip(_counts("new"), _counts("old"), strict=True))
        source = "new JOIN old USING (member_id, month)"
    else:
        difference, source = ", ".join(_counts("new")), "new"
    return f"""
        WITH {changed},
        delta (org_id, month, expected, collected, arrears, members_liable) AS (
            SELECT new.org_id, new.month, {difference} FROM {source}
        )
        INSERT INTO dues_month_totals AS t (org_id, month, expected, collected, arrears, members_liable)
        SELECT * FROM delta
        ON CONFLICT (org_id, month) DO UPDATE SET expected = t.expected + excluded.expected,
            collected = t.collected + excluded.collected, arrears = t.arrears + excluded.arrears,
            members_liable = t.members_liable + excluded.members_liable
        """


_ASSESSED = _totals(
    "new AS (INSERT INTO dues_ledger (member_id, month, org_id, liable, reason, expected, exempt)"
    " VALUES ($1::uuid, $2::text::date, $3::uuid, $4, $5, $6::text::numeric, $5 IS NOT DISTINCT FROM 'exempt')"
    " ON CONFLICT DO NOTHING RETURNING *)"
)
_PAID = _totals(
    "old AS (SELECT * FROM dues_ledger WHERE member_id = $1::uuid AND month = $2::text::date),"
    " new AS (UPDATE dues_ledger SET paid = paid + $3::text::numeric"
    " WHERE member_id = $1::uuid AND month = $2::text::date RETURNING *)"
)
_EXEMPTED = _totals(
    "old AS (SELECT * FROM dues_ledger WHERE member_id = $1::uuid AND month BETWEEN $2::text::date AND $3::text::date),"
    " new AS (UPDATE dues_ledger SET exempt = true"
    " WHERE member_id = $1::uuid AND month BETWEEN $2::text::date AND $3::text::date RETURNING *)"
)


@ledger.on("DuesAssessed")
def on_dues_assessed(e: Recorded) -> Statements:
    d = e.data
    through = ENDED_THROUGH if d.get("reason") == "ended" else d["month"]
    return [
        stmt(_ASSESSED, d["member_id"], d["month"], d["org_id"], d["liable"], d.get("reason"), d.get("amount")),
        stmt(
            "UPDATE dues_accounts SET assessed_through = greatest(assessed_through, $2::text::date)"
            " WHERE member_id = $1::uuid",
            d["member_id"],
            through,
        ),
    ]


@ledger.on("DuesPaid")
def on_dues_paid(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(_PAID, d["member_id"], d["month"], d["amount"]),
        stmt(
            "INSERT INTO dues_payments (payment_ref, member_id, month, amount, paid_by, paid_on)"
            " VALUES ($1, $2::uuid, $3::text::date, $4::text::numeric, $5, $6::text::date) ON CONFLICT DO NOTHING",
            d["payment_ref"],
            d["member_id"],
            d["month"],
            d["amount"],
            d["paid_by"],
            d["paid_on"],
        ),
    ]


@ledger.on("DuesExempted")
def on_dues_exempted(e: Recorded) -> Statements:
    d = e.data
    return [stmt(_EXEMPTED, d["member_id"], d["from_month"], d["to_month"])]


@ledger.on("ArrearsCaseOpened")
def on_arrears_case_opened(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO dues_cases (case_id, member_id, org_id, unpaid_months, opened_on)"
            " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text[]::date[], $5::text::date) ON CONFLICT DO NOTHING",
            d["case_id"],
            d["member_id"],
            d["org_id"],
            d["unpaid_months"],
            d["opened_on"],
        )
    ]


@ledger.on("ArrearsEducationRecorded")
def on_arrears_education_recorded(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE dues_cases SET educated_on = $2::text::date, educated_by = $3, grace_until = $4::text::date"
            " WHERE case_id = $1::uuid",
            d["case_id"],
            d["contacted_on"],
            d["by"],
            d["grace_until"],
        )
    ]


@ledger.on("ArrearsCaseClosed")
def on_arrears_case_closed(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE dues_cases SET closed_on = $2::text::date, close_reason = $3 WHERE case_id = $1::uuid",
            d["case_id"],
            d["closed_on"],
            d["reason"],
        )
    ]


@remittances.on("CheckoffRemittanceImported")
def on_checkoff_remittance_imported(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO checkoff_remittances (remittance_id, org_id, month, file_name, lines, matched, partial,"
            " already_applied, total, unmatched, imported_at)"
            " VALUES ($1::uuid, $2::uuid, $3::text::date, $4, $5, $6, $7,"
            " $8, $9::text::numeric, $10::jsonb, $11) ON CONFLICT DO NOTHING",
            d["remittance_id"],
            d["org_id"],
            d["month"],
            d["file_name"],
            d["lines"],
            d["matched"],
            d["partial"],
            d["already_applied"],
            d["total"],
            json.dumps(d["unmatched"]),
            e.recorded_at,
        )
    ]
