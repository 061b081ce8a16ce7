"""Dues HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.dues import access, checkoff, queries
from services.dues.policy import Policy, Rounding
from services.dues.service import DuesService
from shared.auth import organization
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.params import Day, Instant, Month, months_between
from shared.web.routes import NO_TARGET

router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[DuesService], routes.CALL]

Text = Annotated[str, Field(min_length=1, max_length=500)]
Money = Annotated[Decimal, Field(gt=0, le=Decimal("9999999.99"), decimal_places=2)]


REPORT_MONTHS = 120  # the longest report: ten years of months, by organisation


def _today() -> date:
    return datetime.now(UTC).date()


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PolicyIn(Body):
    effective_from: Month
    rate: Decimal = Field(Decimal("0.005"), gt=0, lt=1, description="of the monthly wage base")
    base_step: Decimal = Field(Decimal(10), gt=0, description="the base's remainder under this is not counted")
    rounding: Rounding = Rounding.FEN
    unpaid_months: int = Field(6, ge=1, le=60)
    grace_days: int = Field(30, ge=0, le=365)
    citation: Text


class WageBaseIn(Body):
    monthly_base: Decimal = Field(ge=0, le=Decimal("9999999.99"), decimal_places=2)
    from_month: Month


class PaymentIn(Body):
    month: Month
    amount: Money


class ExemptionIn(Body):
    from_month: Month
    to_month: Month
    reason: Text


class EducationIn(Body):
    contacted_on: Day
    note: Text


class LapseIn(Body):
    reason: Text
    no_part_in_union_life: bool = Field(description="staff attest the member also took no part in union life")


class CheckoffLineIn(Body):
    member_no: Annotated[str, Field(min_length=1, max_length=40)]
    amount: str = Field(max_length=12, description="yuan, at most two decimals")


class CheckoffIn(Body):
    month: Month
    file_name: str = Field("api", max_length=200)
    lines: list[CheckoffLineIn] = Field(min_length=1, max_length=5000)


# --- policies ---


@router.get("/dues/policies", tags=["policies"])
async def get_policies(call: Call) -> dict[str, Any]:
    """Every dues policy with its effective date, and the one in force this month."""
    return await call.read("policy.read", NO_TARGET, lambda conn: queries.policies(conn, call.service.store))


@router.post("/dues/policies", status_code=201, tags=["policies"])
async def set_policy(body: PolicyIn, call: Call) -> JSONResponse:
    """Set a policy from the first of a month that has not begun (409 policy_retroactive otherwise)."""
    policy = Policy(
        body.effective_from,
        rate=body.rate,
        base_step=body.base_step,
        rounding=body.rounding,
        unpaid_months=body.unpaid_months,
        grace_days=body.grace_days,
        citation=body.citation,
    )
    return await call.command(
        "policy.set",
        NO_TARGET,
        lambda conn, meta: call.service.dues.set_policy(conn, policy, _today(), meta),
        answer=lambda policy_id: {"policy_id": policy_id, "effective_from": body.effective_from},
        status_code=201,
    )


# --- a member's dues ---


@router.get("/members/{member_id}/dues", tags=["dues"])
async def get_member_dues(member_id: UUID, call: Call, as_of: Instant | None = None) -> dict[str, Any]:
    """The member's ledger by month (expected, paid, arrears), their open case and its clock; with `as_of`, as
    recorded then: nothing set later, a policy included, changes it."""
    return await call.read(
        "dues.read",
        access.member(call.pool, member_id),
        lambda conn: queries.member_dues(conn, call.service.store, member_id, as_of),
    )


@router.post("/members/{member_id}/dues/wage-base", tags=["dues"])
async def declare_wage_base(member_id: UUID, body: WageBaseIn, call: Call) -> JSONResponse:
    """The member's monthly wage base (basic wage, without bonuses, allowances and benefits) from a month on."""
    return await call.command(
        "dues.wage_base",
        access.member(call.pool, member_id),
        lambda conn, meta: call.service.dues.declare_wage_base(
            conn, member_id, body.monthly_base, body.from_month, call.caller.actor, meta
        ),
        answer=lambda _: {"member_id": member_id, "monthly_base": f"{body.monthly_base:.2f}"},
    )


@router.post("/members/{member_id}/dues/payments", status_code=201, tags=["dues"])
async def pay_dues(member_id: UUID, body: PaymentIn, call: Call) -> JSONResponse:
    """Pay a month's dues online; send an Idempotency-Key so a retry never pays twice. Closes an open case."""
    return await call.command(
        "dues.pay",
        access.member(call.pool, member_id),
        lambda conn, meta: call.service.dues.pay(conn, member_id, body.month, body.amount, _today(), meta),
        answer=lambda ref: {"member_id": member_id, "payment_ref": ref},
        status_code=201,
    )


@router.post("/members/{member_id}/dues/exemptions", status_code=201, tags=["dues"])
async def exempt_member(member_id: UUID, body: ExemptionIn, call: Call) -> JSONResponse:
    """Exempt the member for a period, with a reason (正当理由)."""
    return await call.command(
        "dues.exempt",
        access.member(call.pool, member_id),
        lambda conn, meta: call.service.dues.exempt(
            conn, member_id, body.from_month, body.to_month, body.reason, _today(), meta
        ),
        answer=lambda _: {"member_id": member_id},
        status_code=201,
    )


# --- the six-month case ---


@router.get("/organizations/{org_id}/dues/cases", tags=["cases"])
async def get_cases(org_id: UUID, call: Call, open_only: bool = True) -> dict[str, Any]:
    """Six-month cases in the organisation's subtree, with their clocks."""
    items = await call.read("case.read", organization(org_id), lambda conn: queries.cases(conn, org_id, open_only))
    return {"items": items}


@router.post("/dues/cases/{case_id}/education", tags=["cases"])
async def record_education(case_id: UUID, body: EducationIn, call: Call) -> JSONResponse:
    """Record the education contact (经教育): the grace period runs from it."""
    return await call.command(
        "case.act",
        access.case(call.pool, case_id),
        lambda conn, meta: call.service.dues.record_education(
            conn, case_id, body.contacted_on, call.caller.actor, body.note, _today(), meta
        ),
        answer=lambda member_id: {"case_id": case_id, "member_id": member_id},
    )


@router.post("/dues/cases/{case_id}/lapse", tags=["cases"])
async def decide_lapse(case_id: UUID, body: LapseIn, call: Call) -> JSONResponse:
    """Decide, after education and the grace period, that the member is regarded as having withdrawn (视为自动退会).
    Membership records the lapse when it reads the decision."""
    return await call.command(
        "case.act",
        access.case(call.pool, case_id),
        lambda conn, meta: call.service.dues.decide_lapse(
            conn, case_id, call.caller.actor, body.reason, body.no_part_in_union_life, _today(), meta
        ),
        answer=lambda member_id: {"case_id": case_id, "member_id": member_id, "decision": "lapse"},
    )


# --- check-off and reports ---


@router.post("/organizations/{org_id}/checkoff", status_code=201, tags=["check-off"])
async def import_checkoff(org_id: UUID, body: CheckoffIn, call: Call) -> JSONResponse:
    """A check-off remittance of up to 5,000 lines in one transaction (bigger files: `python -m
    services.dues.checkoff`). 422 with every bad line; unmatched lines are reported and kept with the remittance."""
    lines, errors = checkoff.parse_lines([(i + 1, line.member_no, line.amount) for i, line in enumerate(body.lines)])
    month = body.month
    return await call.command(
        "checkoff.import",
        organization(org_id),
        lambda conn, meta: checkoff.apply_remittance(
            call.service.dues, conn, org_id, month, body.file_name, lines, errors, _today(), meta
        ),
        status_code=201,
    )


@router.get("/checkoff/{remittance_id}", tags=["check-off"])
async def get_remittance(remittance_id: UUID, call: Call) -> dict[str, Any]:
    """An imported remittance: lines, matched, partial, unmatched with their reasons."""
    target = await access.remittance(call.pool, remittance_id)  # staff of the remitting organisation or above
    await call.allow("checkoff.import", target)  # and, for a system, the scope that imports it
    return await call.read("report.read", target, lambda conn: queries.remittance(conn, remittance_id))


@router.get("/organizations/{org_id}/dues/report", tags=["reports"])
async def get_dues_report(
    org_id: UUID, call: Call, first: Annotated[Month, Query()], last: Annotated[Month, Query()]
) -> dict[str, Any]:
    """Dues expected, collected and in arrears by month and organisation, for the subtree (at most ten years)."""
    months_between(first, last, longest=REPORT_MONTHS, field="query.last")
    return await call.read(
        "report.read", organization(org_id), lambda conn: queries.dues_report(conn, org_id, first, last)
    )


@router.get("/organizations/{org_id}/members-by-status", tags=["reports"])
async def get_members_by_status(
    org_id: UUID, call: Call, as_of: Annotated[Day | None, Query()] = None
) -> dict[str, Any]:
    """Members of the subtree by status (active, retained, suspended, lapsed, terminated) as of a date."""
    day = as_of or _today()
    return await call.read(
        "report.read", organization(org_id), lambda conn: queries.members_by_status(conn, org_id, day)
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link("POST /organizations/{org_id}/checkoff", "remittance_id", "GET /checkoff/{remittance_id}"),
    Link(
        "POST /members/{member_id}/dues/payments",
        "member_id",
        "GET /members/{member_id}/dues",
        "POST /members/{member_id}/dues/exemptions",
        "POST /members/{member_id}/dues/wage-base",
    ),
)
