"""Membership's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from published.membership import MemberStatus
from services.membership import access, domain, finding, overview, queries, queue
from services.membership.handlers import Person
from services.membership.service import MembershipService
from shared.auth import Role, organization, record_reads
from shared.validators import (
    validate_credit_code,
    validate_division_code,
    validate_identity_number,
    validate_mobile,
    validate_person_name,
)
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.params import Day
from shared.web.routes import NO_TARGET

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
# applying to join, and reading the application's status: no account needed
public = APIRouter(dependencies=[Depends(read_after)])
Call = Annotated[routes.Call[MembershipService], routes.CALL]
PublicCall = Annotated[routes.Call[MembershipService], routes.PUBLIC_CALL]

Name = Annotated[str, AfterValidator(validate_person_name)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
OrgName = Annotated[str, Field(min_length=1, max_length=200)]
IdNumber = Annotated[str, Field(max_length=32), AfterValidator(validate_identity_number)]
Mobile = Annotated[str, Field(max_length=32), AfterValidator(validate_mobile)]
CreditCode = Annotated[str, Field(max_length=32), AfterValidator(validate_credit_code)]
RegionCode = Annotated[str, Field(max_length=6), AfterValidator(validate_division_code)]
Actor = Annotated[str, Field(min_length=1, max_length=100)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganizationIn(Body):
    name: OrgName
    type: domain.OrgType
    subtype: str | None = Field(None, max_length=20)
    parent_id: UUID | None = None
    region_code: RegionCode
    credit_code: CreditCode | None = None
    industry: str | None = Field(None, max_length=100)


class ApplicationIn(Body):
    org_id: UUID
    name: Name
    id_number: IdNumber
    phone: Mobile
    employer_credit_code: CreditCode | None = None
    employer_name: str | None = Field(None, max_length=200)
    employment_type: domain.EmploymentType
    household_type: domain.HouseholdType


class ReviewIn(Body):
    reviewer: Actor | None = Field(None, description="shown as the reviewer; default: the token's name")


class RejectIn(ReviewIn):
    reason: Text


class ReasonIn(Body):
    reason: Text


class EmptyIn(Body):
    reason: Text | None = None


@router.post("/organizations", status_code=201, tags=["organizations"])
async def register_organization(body: OrganizationIn, call: Call) -> JSONResponse:
    """Register a union organisation under its parent."""
    cmd = domain.RegisterOrganization(org_id=uuid4(), **body.model_dump())
    return await call.command(
        "organization.register",
        organization(body.parent_id),
        lambda conn, meta: call.service.membership.register_organization(conn, cmd, meta),
        answer=lambda org_id: {"org_id": org_id},
        status_code=201,
    )


@router.get("/organizations/search", tags=["finding"])  # before /organizations/{org_id}, which would take it
async def search_organizations(
    call: Call,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="any part of the name")] = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{6}$", description="a division and all below")] = None,
    industry: Annotated[str | None, Query(max_length=100)] = None,
    type: domain.OrgType | None = None,  # noqa: A002 - the API's name
    accepts_members: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Find unions by a part of their name, their region (a code covers the divisions below it), industry, type."""
    return await call.read(
        "organization.search",
        NO_TARGET,
        lambda conn: finding.search(
            conn,
            q=q,
            region_code=region_code,
            industry=industry,
            org_type=type,
            accepting=accepts_members,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get("/organizations/{org_id}", tags=["organizations"])
async def get_organization(org_id: UUID, call: Call) -> dict[str, Any]:
    """An organisation, with its active member count."""
    return await call.read("organization.read", organization(org_id), lambda conn: queries.organization(conn, org_id))


@router.get("/organizations/{org_id}/members", tags=["organizations"])
async def get_roster(
    org_id: UUID,
    call: Call,
    status: MemberStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The organisation's members, paged by cursor; each member shown is an audit row (their name is shown)."""
    page = await call.read(
        "organization.roster",
        organization(org_id),
        lambda conn: queries.roster(conn, call.service.vault, org_id, status, limit, cursor),
    )
    await record_reads(
        call.pool, call.caller, "organization.roster", [f"member:{m['member_id']}" for m in page["items"]]
    )
    return page


@router.get("/organizations/{org_id}/stats", tags=["organizations"])
async def get_stats(
    org_id: UUID,
    call: Call,
    subtree: bool = True,
    as_of: Annotated[
        Day | None, Query(description="the counts at the end of this day, China Standard Time; without it: now")
    ] = None,
) -> dict[str, Any]:
    """Member counts by status, household type and employment type (of the whole subtree by default), now or as of a
    day."""
    return await call.read(
        "organization.stats", organization(org_id), lambda conn: queries.stats(conn, org_id, subtree, as_of)
    )


@router.post("/organizations/{org_id}/dissolve", tags=["organizations"])
async def dissolve_organization(org_id: UUID, call: Call, body: EmptyIn | None = None) -> JSONResponse:
    """Dissolve an organisation that holds no members."""
    reason = body.reason if body and body.reason else "dissolved"
    return await call.command(
        "organization.dissolve",
        organization(org_id),
        lambda conn, meta: call.service.membership.dissolve_organization(conn, org_id, reason, meta),
        answer=lambda _: {"org_id": org_id, "status": "dissolved"},
    )


@public.post("/applications", status_code=201, tags=["applications"])
async def submit_application(body: ApplicationIn, call: PublicCall) -> JSONResponse:
    """Apply to join a union online: open to every worker, no account needed; rate-limited per client address
    and per identity number (429 `rate_limited` with Retry-After)."""
    service = call.service
    client = call.request.client.host if call.request.client else "unknown"
    await service.rate_limits.hit("address", client, "applications from this address")
    await service.rate_limits.hit("person", service.vault.blind_index(body.id_number), "applications for this person")
    person = Person(
        name=body.name,
        id_number=body.id_number,
        phone=body.phone,
        employment_type=body.employment_type,
        household_type=body.household_type,
        employer_credit_code=body.employer_credit_code,
        employer_name=body.employer_name,
    )
    return await call.command(
        None,
        NO_TARGET,
        lambda conn, meta: service.membership.submit_application(conn, body.org_id, person, meta),
        answer=lambda application_id: {"application_id": application_id, "status": "submitted"},
        status_code=201,
    )


@public.get("/applications/{application_id}", tags=["applications"])
async def get_application(application_id: UUID, call: PublicCall) -> dict[str, Any]:
    """An application's status and, once approved, its member: public, like submitting (no personal data)."""
    async with call.pool.acquire() as conn:
        return await queries.application(conn, application_id)


@router.post("/applications/{application_id}/approve", tags=["applications"])
async def approve_application(application_id: UUID, body: ReviewIn, call: Call) -> JSONResponse:
    """Approve an application: the person becomes a member, with a member number for life."""
    reviewer = body.reviewer or call.caller.display_name
    return await call.command(
        "application.review",
        access.application(call.pool, application_id),
        lambda conn, meta: call.service.membership.approve_application(conn, application_id, reviewer, meta),
        answer=lambda joined: {"member_id": joined[0], "member_no": joined[1]},
    )


@router.post("/applications/{application_id}/reject", tags=["applications"])
async def reject_application(application_id: UUID, body: RejectIn, call: Call) -> JSONResponse:
    """Reject an application, with the reason."""
    reviewer = body.reviewer or call.caller.display_name
    return await call.command(
        "application.review",
        access.application(call.pool, application_id),
        lambda conn, meta: call.service.membership.reject_application(
            conn, application_id, reviewer, body.reason, meta
        ),
        answer=lambda _: {"application_id": application_id, "status": "rejected"},
    )


@router.get("/members/{member_id}", tags=["members"])
async def get_member(member_id: UUID, call: Call, as_of: AwareDatetime | None = None) -> dict[str, Any]:
    """A member, personal data masked; with `as_of`, the member as they were then."""
    service = call.service
    return await call.read(
        "member.read",
        access.member(call.pool, member_id),
        lambda conn: (
            queries.member(conn, service.vault, member_id)
            if as_of is None
            else queries.member_as_of(conn, service.store, service.vault, member_id, as_of)
        ),
    )


@router.get("/members/{member_id}/history", tags=["members"])
async def get_history(member_id: UUID, call: Call) -> dict[str, Any]:
    """The member's dossier: every event about them, from every service, in order."""
    events = await call.read(
        "member.history", access.member(call.pool, member_id), lambda conn: queries.history(conn, member_id)
    )
    return {"member_id": member_id, "events": events}


@router.get("/members/{member_id}/personal-data", tags=["members"])
async def get_personal_data(member_id: UUID, call: Call) -> dict[str, Any]:
    """The member's name, identity number and phone unmasked: for the member and their organisation's staff;
    every read is written to the audit log with the reader from the token."""
    return await call.read(
        "member.personal_data",
        access.member(call.pool, member_id),
        lambda conn: queries.personal_data(conn, call.service.vault, member_id),
    )


def _member_command(name: str, summary: str) -> None:
    async def endpoint(member_id: UUID, body: ReasonIn, call: Call) -> JSONResponse:
        action = getattr(call.service.membership, name)
        return await call.command(
            "member.change",
            access.member(call.pool, member_id),
            lambda conn, meta: action(conn, member_id, body.reason, meta),
            view=lambda conn, _: queries.member_status(conn, member_id),
        )

    endpoint.__doc__ = summary
    router.add_api_route(
        f"/members/{{member_id}}/{name}", endpoint, methods=["POST"], tags=["members"], name=name, summary=summary
    )


_member_command("suspend", "Suspend an active membership.")
_member_command("reinstate", "Reinstate a suspended membership.")
_member_command("terminate", "End a membership (withdrawal, death, expulsion).")


@router.delete("/members/{member_id}/personal-data", tags=["members"])
async def erase_personal_data(member_id: UUID, call: Call) -> JSONResponse:
    """Erase a former member's personal data by destroying their key; the history stays, anonymous."""
    return await call.command(
        "member.erase",
        access.member(call.pool, member_id),
        lambda conn, meta: call.service.membership.erase_personal_data(conn, member_id, meta),
        answer=lambda _: {"member_id": member_id, "erased": True},
    )


@router.get("/founding-suggestions", tags=["organizations"])
async def get_founding_suggestions(call: Call, org_id: UUID | None = None) -> dict[str, Any]:
    """Employers whose workers held by a federation or joint union reached the founding threshold.

    Staff see their own organisation's subtree unless they name an organisation inside it."""
    org_id = call.own_organization(org_id)
    items = await call.read(
        "founding.read", organization(org_id), lambda conn: queries.founding_suggestions(conn, org_id)
    )
    return {"items": items}


# --- work queues, finding a union, finding a member -----------------------------------------------------


@router.get("/organizations/{org_id}/queue", tags=["queue"])
async def get_queue(
    org_id: UUID,
    call: Call,
    kind: Literal["application", "transfer", "request"] | None = None,
    overdue: bool | None = None,
    subtree: Annotated[bool, Query(description="also what waits for every organisation below")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """What waits for the organisation's staff (and what was escalated to it), overdue first, then oldest."""
    service = call.service
    return await call.read(
        "organization.queue",
        organization(org_id),
        lambda conn: queue.page(
            conn,
            service.vault,
            org_id,
            now=service.clock(),
            kind=kind,
            overdue=overdue,
            subtree=subtree,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get("/organizations/{org_id}/children", tags=["finding"])
async def get_children(org_id: UUID, call: Call) -> dict[str, Any]:
    """The organisations directly below this one."""
    return await call.read("organization.read", organization(org_id), lambda conn: finding.children(conn, org_id))


@router.get("/organizations/{org_id}/path", tags=["finding"])
async def get_path(org_id: UUID, call: Call) -> dict[str, Any]:
    """The organisations from the root of the tree down to this one."""
    return await call.read("organization.read", organization(org_id), lambda conn: finding.path(conn, org_id))


@public.get("/where-to-join", tags=["finding"])
async def where_to_join(
    call: PublicCall,
    region_code: Annotated[RegionCode, Query(description="where the worker works")],
    credit_code: CreditCode | None = None,
    employer_name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    industry: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Which union would take a worker of this employer here: open to the public, rate-limited per address."""
    client = call.request.client.host if call.request.client else "unknown"
    await call.service.rate_limits.hit("where_to_join", client, "look-ups from this address")
    async with call.pool.acquire() as conn:
        return await finding.where_to_join(
            conn, credit_code=credit_code, employer_name=employer_name, region_code=region_code, industry=industry
        )


class LookupIn(Body):
    id_number: IdNumber | None = None
    member_no: str | None = Field(None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.id_number is None) == (self.member_no is None):
            raise ValueError("give either id_number or member_no")
        return self


@router.post("/members/lookup", tags=["members"])
async def lookup_member(body: LookupIn, call: Call) -> dict[str, Any]:
    """Find a member by identity number (a POST: the number stays out of URLs and logs; audited as a read of
    personal data) or by member number, within the staff's organisations. Personal data masked."""
    action = "member.lookup" if body.id_number is None else "member.lookup_by_id_number"
    vault = call.service.vault
    if call.caller.role not in {Role.STAFF, Role.ADMIN}:
        await call.allow(action)  # refused before anything is looked up
    async with call.pool.acquire() as conn:
        member_id = await finding.member_by_key(conn, vault, body.id_number, body.member_no)
    return await call.read(
        action, access.member(call.pool, member_id), lambda conn: queries.member(conn, vault, member_id)
    )


@router.get("/members/{member_id}/overview", tags=["members"])
async def get_overview(member_id: UUID, call: Call) -> dict[str, Any]:
    """Where the member's matters stand: status, organisation, card, benefits this year, open transfer, requests,
    each open matter with its clock, and the timeline of what happened, why, and which organisation acted."""
    service = call.service
    return await call.read(
        "member.overview",
        access.member(call.pool, member_id),
        lambda conn: overview.overview(conn, service.vault, member_id, service.clock()),
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /organizations",
        "org_id",
        "GET /organizations/{org_id}",
        "GET /organizations/{org_id}/members",
        "GET /organizations/{org_id}/stats",
        "GET /organizations/{org_id}/queue",
        "GET /organizations/{org_id}/children",
        "GET /organizations/{org_id}/path",
        "GET /founding-suggestions",
        "POST /applications",
        "POST /organizations/{org_id}/dissolve",
    ),
    Link("POST /organizations", "org_id", "POST /organizations", param="parent_id"),
    Link(
        "POST /applications",
        "application_id",
        "GET /applications/{application_id}",
        "POST /applications/{application_id}/approve",
        "POST /applications/{application_id}/reject",
    ),
    Link(
        "POST /applications/{application_id}/approve",
        "member_id",
        "GET /members/{member_id}",
        "GET /members/{member_id}/history",
        "GET /members/{member_id}/overview",
        "GET /members/{member_id}/personal-data",
        "POST /members/{member_id}/suspend",
        "POST /members/{member_id}/reinstate",
        "POST /members/{member_id}/retain",
        "POST /members/{member_id}/restore",
        "POST /members/{member_id}/terminate",
        "DELETE /members/{member_id}/personal-data",
    ),
    Link("POST /applications/{application_id}/approve", "member_no", "POST /members/lookup"),
)
