"""Election routes (工会基层组织选举): request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.feedback import access, elections
from services.feedback.service import FeedbackService
from shared.auth import organization
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare
from shared.web.routes import NO_TARGET

router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)], tags=["elections"])
Call = Annotated[routes.Call[FeedbackService], routes.CALL]
FractionText = Annotated[str, Field(pattern=r"^\d+(/\d+|\.\d+)?$", max_length=20)]
Receipt = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ElectionIn(Body):
    org_id: UUID
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: elections.Body
    assembly: elections.Assembly = elections.Assembly.MEMBERS
    seats: Annotated[int, Field(ge=1, le=elections.MAX_CANDIDATES)]
    representatives: list[UUID] = Field(default_factory=list, max_length=10_000)
    quorum: FractionText | None = Field(None, description="share of the entitled voters who must vote; default 2/3")
    majority_base: elections.MajorityBase | None = Field(None, description="default: entitled (应到会人数)")
    min_margin: FractionText | None = Field(
        None, description="minimum 差额率 (candidates - seats) / seats; default 5% for a committee, 0 for chairs"
    )
    max_rounds: Annotated[int, Field(ge=1, le=10)] | None = None


class NominationIn(Body):
    member_id: UUID


class RoundIn(Body):
    opens_at: AwareDatetime | None = Field(None, description="default: now")
    closes_at: AwareDatetime


class ElectionBallotIn(Body):
    voter_id: UUID | None = Field(None, description="the token's member: a ballot is cast for oneself only")
    approve: list[UUID] = Field(
        max_length=elections.MAX_CANDIDATES, description="the candidates approved, at most the seats"
    )


def _rules(body: ElectionIn) -> elections.Rules:
    rules = elections.Rules.default_for(body.body)
    if body.quorum is not None:
        rules = replace(rules, quorum=elections.parse_fraction("quorum", body.quorum))
    if body.majority_base is not None:
        rules = replace(rules, majority_base=body.majority_base)
    if body.min_margin is not None:
        rules = replace(rules, min_margin=elections.parse_fraction("min_margin", body.min_margin))
    if body.max_rounds is not None:
        rules = replace(rules, max_rounds=body.max_rounds)
    return rules


@router.post("/elections", status_code=201)
async def call_election(body: ElectionIn, call: Call) -> JSONResponse:
    """Call an election of an organisation's committee, chair or vice-chairs, with its rules (default: the 条例's)."""
    cmd = elections.CallElection(
        uuid4(),
        body.org_id,
        body.title,
        body.body,
        body.assembly,
        body.seats,
        _rules(body),
        tuple(body.representatives),
    )
    return await call.command(
        "election.call",
        organization(body.org_id),
        lambda conn, meta: call.service.elections.call(conn, cmd, meta),
        answer=lambda election_id: {"election_id": election_id, "status": "nominating"},
        status_code=201,
    )


@router.post("/elections/{election_id}/candidates", status_code=201)
async def nominate(election_id: UUID, body: NominationIn, call: Call) -> JSONResponse:
    """Nominate a candidate: an active member of the organisation or below it."""
    return await call.command(
        "election.nominate",
        access.election(call.pool, election_id),
        lambda conn, meta: call.service.elections.nominate(conn, election_id, body.member_id, meta),
        answer=lambda _: {"election_id": election_id, "candidate_id": body.member_id},
        status_code=201,
    )


@router.post("/elections/{election_id}/candidates/confirm")
async def confirm_candidates(election_id: UUID, call: Call) -> JSONResponse:
    """Confirm the candidates; a committee needs more candidates than seats by the 差额 rate."""
    return await call.command(
        "election.confirm",
        access.election(call.pool, election_id),
        lambda conn, meta: call.service.elections.confirm(conn, election_id, meta),
        answer=lambda _: {"election_id": election_id, "status": "confirmed"},
    )


@router.post("/elections/{election_id}/rounds", status_code=201)
async def open_round(election_id: UUID, body: RoundIn, call: Call) -> JSONResponse:
    """Open the next round: the first fixes and publishes the electorate; further ones are among who is left."""
    opens_at = body.opens_at or call.service.clock()
    return await call.command(
        "election.open_round",
        access.election(call.pool, election_id),
        lambda conn, meta: call.service.elections.open_round(conn, election_id, opens_at, body.closes_at, meta),
        answer=lambda round_no: {"election_id": election_id, "round": round_no, "status": "voting"},
        status_code=201,
    )


@router.post("/elections/{election_id}/ballots", status_code=201)
async def cast_ballot(election_id: UUID, body: ElectionBallotIn, call: Call) -> dict[str, Any]:
    """Cast a secret ballot as the member the token names; the answer is a receipt to find it in the published set.

    No event, no log line, no audit row; an `Idempotency-Key` is ignored (a retry gets 409 `already_voted`).
    """
    voter_id, target = access.voter(call.caller, body.voter_id)
    await call.allow("election.ballot", target)
    assert voter_id is not None
    async with call.pool.acquire() as conn, conn.transaction():
        receipt = await call.service.elections.cast_ballot(conn, election_id, voter_id, body.approve)
    return {"election_id": election_id, "receipt": receipt}


@router.post("/elections/{election_id}/close")
async def close_round(election_id: UUID, call: Call) -> JSONResponse:
    """Close and count the open round: publish its ballots, the proven tally and who is elected."""
    return await call.command(
        "election.close_round",
        access.election(call.pool, election_id),
        lambda conn, meta: call.service.elections.close_round(conn, election_id, meta),
        answer=lambda state: {"election_id": election_id, "status": state.status, "elected": state.elected},
    )


@router.get("/elections/{election_id}")
async def get_election(election_id: UUID, call: Call) -> dict[str, Any]:
    """The published record: rules, candidates, electorate, and each round's keys, tally, proofs and outcome."""
    return await call.read("election.read", NO_TARGET, lambda conn: call.service.elections.view(conn, election_id))


@router.get("/elections/{election_id}/rounds/{round_no}/ballots")
async def get_ballots(election_id: UUID, round_no: int, call: Call) -> dict[str, Any]:
    """A counted round's published ballot set: ciphertexts and their proofs, in receipt order; no voter."""
    return await call.read(
        "election.read", NO_TARGET, lambda conn: call.service.elections.ballots(conn, election_id, round_no)
    )


@router.get("/elections/{election_id}/receipts/{receipt}")
async def check_receipt(election_id: UUID, receipt: Receipt, call: Call) -> dict[str, Any]:
    """Whether a receipt is in a published ballot set (and which round's); it says nothing about the vote."""
    return await call.read(
        "election.read", NO_TARGET, lambda conn: call.service.elections.check_receipt(conn, election_id, receipt)
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /elections",
        "election_id",
        "GET /elections/{election_id}",
        "POST /elections/{election_id}/candidates",
        "POST /elections/{election_id}/candidates/confirm",
        "POST /elections/{election_id}/rounds",
        "POST /elections/{election_id}/ballots",
        "POST /elections/{election_id}/close",
    ),
)
