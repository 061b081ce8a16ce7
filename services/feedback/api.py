"""Feedback's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.feedback import access, domain, queries
from services.feedback.service import FeedbackService
from shared.auth import organization
from shared.positions import Token
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.routes import NO_TARGET

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[FeedbackService], routes.CALL]

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


# --- ratings ---


@router.post("/ratings", status_code=201, tags=["ratings"])
async def give_rating(body: RatingIn, call: Call) -> JSONResponse:
    """Rate a redemption, once, as the member who received the service."""
    target = access.for_member(call.caller, body.member_id)
    assert target.member_id is not None
    cmd = domain.GiveRating(body.redemption_id, target.member_id, body.score, body.comment)
    return await call.command(
        "rating.give",
        target,
        lambda conn, meta: call.service.feedback.give_rating(conn, cmd, meta),
        answer=lambda rating: {
            "redemption_id": rating.redemption_id,
            "score": rating.score,
            "category": rating.category,
            "month": rating.month,
        },
        status_code=201,
    )


@router.get("/organizations/{org_id}/satisfaction", tags=["ratings"])
async def get_satisfaction(org_id: UUID, call: Call, subtree: bool = True) -> dict[str, Any]:
    """Average ratings of the services an organisation gave (its whole subtree by default), by category and month."""
    return await call.read(
        "satisfaction.read", organization(org_id), lambda conn: queries.satisfaction(conn, org_id, subtree)
    )


# --- evaluation campaigns ---


@router.post("/campaigns", status_code=201, tags=["campaigns"])
async def open_campaign(body: CampaignIn, call: Call) -> JSONResponse:
    """Open an evaluation campaign; its electorate is fixed now, as of `electorate_as_of`: every membership event
    up to that position of membership's log is in it (pass `after=` a membership token to be sure of a join)."""
    await call.allow("campaign.open", organization(body.electorate_org_id))
    cmd = domain.OpenCampaign(campaign_id=uuid4(), **body.model_dump())
    as_of = str(Token("membership", await call.service.runtime.watermarks.position("membership")))  # before reading
    return await call.command(
        None,  # allowed above: the electorate's position is taken after the check and before the members are read
        NO_TARGET,
        lambda conn, meta: call.service.feedback.open_campaign(conn, cmd, meta, as_of),
        answer=lambda opened: {"campaign_id": cmd.campaign_id, "eligible": opened.eligible, "electorate_as_of": as_of},
        status_code=201,
    )


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
async def get_campaign(campaign_id: UUID, call: Call) -> dict[str, Any]:
    """A campaign: its window, status, electorate size and how many have voted so far."""
    clock = call.service.feedback.clock
    return await call.read("campaign.read", NO_TARGET, lambda conn: queries.campaign(conn, campaign_id, clock()))


@router.post("/campaigns/{campaign_id}/ballots", status_code=201, tags=["campaigns"])
async def cast_ballot(campaign_id: UUID, body: BallotIn, call: Call) -> dict[str, Any]:
    """Cast an anonymous ballot as the voter the token names: no receipt, no event, no log line, no audit row.

    An `Idempotency-Key` is ignored, because remembering a response per request would timestamp the voter.
    A retry after success gets 409 `already_voted`: the ballot is in.
    """
    voter_id, target = access.voter(call.caller, body.voter_id)
    await call.allow("ballot.cast", target)
    assert voter_id is not None
    async with call.pool.acquire() as conn, conn.transaction():
        await call.service.feedback.cast_ballot(conn, campaign_id, voter_id, body.score, body.comment)
    return {"campaign_id": campaign_id, "accepted": True}


@router.post("/campaigns/{campaign_id}/close", tags=["campaigns"])
async def close_campaign(campaign_id: UUID, call: Call) -> JSONResponse:
    """Close a campaign before its deadline; results are published if the turnout reached the minimum."""
    return await call.command(
        "campaign.close",
        access.campaign(call.pool, campaign_id),
        lambda conn, meta: call.service.feedback.close_campaign(conn, campaign_id, meta),
        answer=lambda state: {
            "campaign_id": campaign_id,
            "status": "closed",
            "turnout": state.turnout,
            "results_shown": state.results is not None,
        },
    )


@router.get("/campaigns/{campaign_id}/results", tags=["campaigns"])
async def get_results(campaign_id: UUID, call: Call) -> dict[str, Any]:
    """Turnout, average and distribution, once closed and only if the turnout reached the minimum."""
    await call.allow("campaign.read")
    feedback = call.service.feedback
    async with call.pool.acquire() as conn, conn.transaction():
        state = await feedback.settle(conn, campaign_id, call.metadata())
        return await queries.results(conn, state, feedback.clock())


# --- members' requests ---


@router.post("/requests", status_code=201, tags=["requests"])
async def raise_request(body: RequestIn, call: Call) -> JSONResponse:
    """Raise a request or complaint; it goes to the member's organisation, which must answer it."""
    target = access.for_member(call.caller, body.member_id)
    assert target.member_id is not None
    cmd = domain.RaiseRequest(uuid4(), target.member_id, body.category, body.text)
    return await call.command(
        "request.raise",
        target,
        lambda conn, meta: call.service.feedback.raise_request(conn, cmd, meta),
        answer=lambda request_id: {"request_id": request_id, "status": "open"},
        status_code=201,
    )


@router.get("/requests/{request_id}", tags=["requests"])
async def get_request(request_id: UUID, call: Call) -> dict[str, Any]:
    """A request, its answer if any, and its age."""
    clock = call.service.feedback.clock
    return await call.read(
        "request.read", access.request(call.pool, request_id), lambda conn: queries.request(conn, request_id, clock())
    )


@router.post("/requests/{request_id}/answer", tags=["requests"])
async def answer_request(request_id: UUID, body: AnswerIn, call: Call) -> JSONResponse:
    """Answer a member's request, once."""
    by = body.by or call.caller.display_name
    return await call.command(
        "request.answer",
        access.request(call.pool, request_id),
        lambda conn, meta: call.service.feedback.answer_request(conn, request_id, by, body.text, meta),
        answer=lambda _: {"request_id": request_id, "status": "answered"},
    )


@router.get("/organizations/{org_id}/requests", tags=["requests"])
async def get_requests(org_id: UUID, call: Call, status: Literal["open", "answered"] | None = None) -> dict[str, Any]:
    """The requests an organisation received, oldest first, with their age."""
    clock = call.service.feedback.clock
    return await call.read(
        "organization.requests", organization(org_id), lambda conn: queries.requests(conn, org_id, status, clock())
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /campaigns",
        "campaign_id",
        "GET /campaigns/{campaign_id}",
        "POST /campaigns/{campaign_id}/ballots",
        "POST /campaigns/{campaign_id}/close",
        "GET /campaigns/{campaign_id}/results",
    ),
    Link(
        "POST /requests",
        "request_id",
        "GET /requests/{request_id}",
        "POST /requests/{request_id}/answer",
    ),
)
