"""Feedback's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.feedback import access, domain, queries
from services.feedback.handlers import Feedback
from services.feedback.service import ServiceDep
from shared.app import request_metadata, run_command
from shared.auth import CurrentPrincipal, authenticate, organization
from shared.consistency import read_after
from shared.positions import Token

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])

Score = Annotated[int, Field(ge=1, le=5)]
Comment = Annotated[str, Field(max_length=domain.COMMENT_MAX)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Actor = Annotated[str, Field(min_length=1, max_length=100)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RatingIn(Body):
    redemption_id: UUID
    member_id: UUID | None = Field(None, description="the rating member: the token's member by default")
    score: Score
    comment: Comment | None = None


class CampaignIn(Body):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    subject_type: domain.SubjectType
    subject_id: UUID
    electorate_org_id: UUID
    electorate: domain.Electorate
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    min_turnout: Annotated[int, Field(ge=domain.MIN_TURNOUT_FLOOR, le=1_000_000)] = domain.DEFAULT_MIN_TURNOUT


class BallotIn(Body):
    voter_id: UUID | None = Field(
        None, description="the token's member (or, when lower organisations vote, the staff's organisation)"
    )
    score: Score
    comment: Comment | None = None


class RequestIn(Body):
    member_id: UUID | None = Field(None, description="the member raising it: the token's member by default")
    category: Annotated[str, Field(min_length=1, max_length=50)]
    text: Text


class AnswerIn(Body):
    by: Actor | None = Field(None, description="shown as who answered; default: the token's name")
    text: Text


async def _feedback(service: ServiceDep) -> Feedback:
    return service.feedback


FeedbackDep = Annotated[Feedback, Depends(_feedback)]


# --- ratings ---


@router.post("/ratings", status_code=201, tags=["ratings"])
async def give_rating(
    body: RatingIn, request: Request, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Rate a redemption, once, as the member who received the service."""
    target = access.for_member(principal, body.member_id)
    await access.guard.check(service.pool, principal, "rating.give", target)
    assert target.member_id is not None
    cmd = domain.GiveRating(body.redemption_id, target.member_id, body.score, body.comment)
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        rating = await feedback.give_rating(conn, cmd, meta)
        return {
            "redemption_id": rating.redemption_id,
            "score": rating.score,
            "category": rating.category,
            "month": rating.month,
        }

    return await run_command(request, service.pool, run, 201)


@router.get("/organizations/{org_id}/satisfaction", tags=["ratings"])
async def get_satisfaction(
    org_id: UUID, service: ServiceDep, principal: CurrentPrincipal, subtree: bool = True
) -> dict[str, Any]:
    """Average ratings of the services an organisation gave (its whole subtree by default), by category and month."""
    await access.guard.check(service.pool, principal, "satisfaction.read", organization(org_id))
    async with service.pool.acquire() as conn:
        return await queries.satisfaction(conn, org_id, subtree)


# --- evaluation campaigns ---


@router.post("/campaigns", status_code=201, tags=["campaigns"])
async def open_campaign(
    body: CampaignIn, request: Request, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Open an evaluation campaign; its electorate is fixed now, as of `electorate_as_of`: every membership event
    up to that position of membership's log is in it (pass `after=` a membership token to be sure of a join)."""
    await access.guard.check(service.pool, principal, "campaign.open", organization(body.electorate_org_id))
    cmd = domain.OpenCampaign(campaign_id=uuid4(), **body.model_dump())
    meta = request_metadata(request, principal)
    as_of = Token("membership", await service.runtime.watermarks.position("membership"))  # before reading members

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        opened = await feedback.open_campaign(conn, cmd, meta, str(as_of))
        return {"campaign_id": cmd.campaign_id, "eligible": opened.eligible, "electorate_as_of": str(as_of)}

    return await run_command(request, service.pool, run, 201)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
async def get_campaign(
    campaign_id: UUID, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """A campaign: its window, status, electorate size and how many have voted so far."""
    await access.guard.check(service.pool, principal, "campaign.read")
    async with service.pool.acquire() as conn:
        state = await feedback.campaign(conn, campaign_id)
        return await queries.campaign(conn, state, feedback.clock())


@router.post("/campaigns/{campaign_id}/ballots", status_code=201, tags=["campaigns"])
async def cast_ballot(
    campaign_id: UUID, body: BallotIn, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Cast an anonymous ballot as the voter the token names: no receipt, no event, no log line, no audit row.

    An `Idempotency-Key` is ignored, because remembering a response per request would timestamp the voter.
    A retry after success gets 409 `already_voted`: the ballot is in.
    """
    voter_id, target = access.voter(principal, body.voter_id)
    await access.guard.check(service.pool, principal, "ballot.cast", target)
    assert voter_id is not None
    async with service.pool.acquire() as conn, conn.transaction():
        await feedback.cast_ballot(conn, campaign_id, voter_id, body.score, body.comment)
    return {"campaign_id": campaign_id, "accepted": True}


@router.post("/campaigns/{campaign_id}/close", tags=["campaigns"])
async def close_campaign(
    campaign_id: UUID, request: Request, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Close a campaign before its deadline; results are published if the turnout reached the minimum."""
    await access.guard.check(
        service.pool, principal, "campaign.close", await access.campaign(service.pool, campaign_id)
    )
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        state = await feedback.close_campaign(conn, campaign_id, meta)
        return {
            "campaign_id": campaign_id,
            "status": "closed",
            "turnout": state.turnout,
            "results_shown": state.results is not None,
        }

    return await run_command(request, service.pool, run)


@router.get("/campaigns/{campaign_id}/results", tags=["campaigns"])
async def get_results(
    campaign_id: UUID, request: Request, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Turnout, average and distribution, once closed and only if the turnout reached the minimum."""
    await access.guard.check(service.pool, principal, "campaign.read")
    async with service.pool.acquire() as conn, conn.transaction():
        state = await feedback.settle(conn, campaign_id, request_metadata(request, principal))
        return await queries.results(conn, state, feedback.clock())


# --- members' requests ---


@router.post("/requests", status_code=201, tags=["requests"])
async def raise_request(
    body: RequestIn, request: Request, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Raise a request or complaint; it goes to the member's organisation, which must answer it."""
    target = access.for_member(principal, body.member_id)
    await access.guard.check(service.pool, principal, "request.raise", target)
    assert target.member_id is not None
    cmd = domain.RaiseRequest(uuid4(), target.member_id, body.category, body.text)
    meta = request_metadata(request, principal)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        return {"request_id": await feedback.raise_request(conn, cmd, meta), "status": "open"}

    return await run_command(request, service.pool, run, 201)


@router.get("/requests/{request_id}", tags=["requests"])
async def get_request(
    request_id: UUID, service: ServiceDep, feedback: FeedbackDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """A request, its answer if any, and its age."""
    await access.guard.check(service.pool, principal, "request.read", await access.request(service.pool, request_id))
    async with service.pool.acquire() as conn:
        return await queries.request(conn, request_id, feedback.clock())


@router.post("/requests/{request_id}/answer", tags=["requests"])
async def answer_request(
    request_id: UUID,
    body: AnswerIn,
    request: Request,
    service: ServiceDep,
    feedback: FeedbackDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Answer a member's request, once."""
    await access.guard.check(service.pool, principal, "request.answer", await access.request(service.pool, request_id))
    meta = request_metadata(request, principal)
    by = body.by or principal.display_name

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await feedback.answer_request(conn, request_id, by, body.text, meta)
        return {"request_id": request_id, "status": "answered"}

    return await run_command(request, service.pool, run)


@router.get("/organizations/{org_id}/requests", tags=["requests"])
async def get_requests(
    org_id: UUID,
    service: ServiceDep,
    feedback: FeedbackDep,
    principal: CurrentPrincipal,
    status: Literal["open", "answered"] | None = None,
) -> dict[str, Any]:
    """The requests an organisation received, oldest first, with their age."""
    await access.guard.check(service.pool, principal, "organization.requests", organization(org_id))
    async with service.pool.acquire() as conn:
        return await queries.requests(conn, org_id, status, feedback.clock())
