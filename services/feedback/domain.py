"""Feedback's rules as deciders: decide(command, state) -> events; evolve(state, event) -> state.

A ballot is the exception: `cast_ballot` returns a `Ballot`, a plain value that is not an event and carries no
voter. The caller seals it to the campaign's public key and drops it into the ballot box; nothing about it is ever
appended to the log. The close opens the sum of the box only when the results will be shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from uuid import UUID

from published.membership import MemberStatus
from services.feedback.events import (
    CampaignClosed,
    CampaignOpened,
    RatingGiven,
    RequestAnswered,
    RequestRaised,
    ResultsPublished,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
SCORES = range(1, 6)
COMMENT_MAX = 500
# below three ballots, a voter who knows their own ballot can work out another's from the result
MIN_TURNOUT_FLOOR = 3
DEFAULT_MIN_TURNOUT = 5


def month_of(moment: datetime) -> str:
    return moment.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m")


def _score(score: int) -> int:
    if score not in SCORES:
        raise InvalidInputError("score", "score must be a whole number from 1 to 5")
    return score


def _comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > COMMENT_MAX:
        raise InvalidInputError("comment", f"comment must be at most {COMMENT_MAX} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape: no text can hold it
        raise InvalidInputError("comment", "comment must be text (it holds an unpaired surrogate)") from exc
    return text or None


# --- ratings -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """A redemption as the service card topic told us."""

    redemption_id: UUID
    member_id: UUID
    item_id: UUID
    category: str
    org_id: UUID
    redeemed_at: datetime
    reversed: bool = False


@dataclass(frozen=True)
class GiveRating:
    redemption_id: UUID
    member_id: UUID
    score: int
    comment: str | None = None


def give_rating(cmd: GiveRating, redemption: Redemption | None, already_rated: bool) -> list[DomainEvent]:
    if redemption is None:
        raise NotFoundError("redemption", cmd.redemption_id)
    if redemption.member_id != cmd.member_id:
        raise DomainError("not_your_redemption", "only the member who received the service can rate it")
    if redemption.reversed:
        raise DomainError("redemption_reversed", "the redemption was reversed: there is no service to rate")
    if already_rated:
        raise DomainError("already_rated", "a redemption is rated once")
    return [
        RatingGiven(
            redemption_id=redemption.redemption_id,
            member_id=redemption.member_id,
            item_id=redemption.item_id,
            category=redemption.category,
            org_id=redemption.org_id,
            score=_score(cmd.score),
            month=month_of(redemption.redeemed_at),
            comment=_comment(cmd.comment),
        )
    ]


# --- evaluation campaigns ------------------------------------------------------------------------------


class SubjectType(StrEnum):
    CADRE = "cadre"  # 职工群众评议工会干部
    ORGANIZATION = "organization"  # 下级工会评价上级工会, or members rating their union


class Electorate(StrEnum):
    MEMBERS = "members"  # the active members of the organisation's whole subtree
    LOWER_ORGS = "lower_orgs"  # the organisations directly below it


class Phase(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class OpenCampaign:
    campaign_id: UUID
    title: str
    subject_type: SubjectType
    subject_id: UUID
    electorate_org_id: UUID
    electorate: Electorate
    opens_at: datetime
    closes_at: datetime
    min_turnout: int = DEFAULT_MIN_TURNOUT


def open_campaign(
    cmd: OpenCampaign,
    now: datetime,
    *,
    electorate_org_known: bool,
    subject_known: bool,
    voters: Sequence[UUID],
    electorate_as_of: str | None = None,
) -> list[DomainEvent]:
    """`voters`: the electorate as it is now, read after membership's log was consumed through
    `electorate_as_of`; it is fixed for the campaign's whole life."""
    if cmd.closes_at <= cmd.opens_at:
        raise InvalidInputError("closes_at", "closes_at must be after opens_at")
    if cmd.closes_at <= now:
        raise InvalidInputError("closes_at", "closes_at is in the past")
    if cmd.min_turnout < MIN_TURNOUT_FLOOR:
        raise InvalidInputError(
            "min_turnout",
            f"min_turnout must be at least {MIN_TURNOUT_FLOOR}, or a voter "
            "could deduce another's ballot from the results",
        )
    if not electorate_org_known:
        raise NotFoundError("organization", cmd.electorate_org_id)
    if cmd.subject_type is SubjectType.ORGANIZATION and not subject_known:
        raise InvalidInputError("subject_id", f"organisation {cmd.subject_id} does not exist")
    electorate = tuple(sorted(set(voters)))  # sorted: the order says nothing about anyone
    if len(electorate) < cmd.min_turnout:
        raise DomainError(
            "electorate_too_small",
            f"the electorate has {len(electorate)} voters, fewer than the "
            f"minimum turnout of {cmd.min_turnout}: no result could be shown",
        )
    return [
        CampaignOpened(
            campaign_id=cmd.campaign_id,
            title=cmd.title,
            subject_type=cmd.subject_type,
            subject_id=cmd.subject_id,
            electorate_org_id=cmd.electorate_org_id,
            electorate=cmd.electorate,
            opens_at=cmd.opens_at,
            closes_at=cmd.closes_at,
            min_turnout=cmd.min_turnout,
            eligible=len(electorate),
            eligible_voters=electorate,
            electorate_as_of=electorate_as_of,
        )
    ]


@dataclass(frozen=True)
class Campaign:
    campaign_id: UUID
    subject_type: SubjectType
    subject_id: UUID
    opens_at: datetime
    closes_at: datetime
    min_turnout: int
    eligible: int
    closed_at: datetime | None = None  # recorded: CampaignClosed
    turnout: int | None = None  # known once closed
    results: ResultsPublished | None = None

    @property
    def recorded_closed(self) -> bool:
        return self.closed_at is not None


def phase(campaign: Campaign, now: datetime) -> Phase:
    """A campaign is closed by command, or by its deadline passing, whether or not that is recorded yet."""
    if campaign.recorded_closed or now >= campaign.closes_at:
        return Phase.CLOSED
    return Phase.UPCOMING if now < campaign.opens_at else Phase.OPEN


@dataclass(frozen=True)
class Ballot:
    """What goes into the box: a score and maybe a comment. No voter, no time, no id."""

    score: int
    comment: str | None = None


def cast_ballot(
    campaign: Campaign, now: datetime, *, eligible: bool, already_voted: bool, score: int, comment: str | None
) -> Ballot:
    current = phase(campaign, now)
    if current is Phase.UPCOMING:
        raise DomainError("campaign_closed", "the campaign is not open yet")
    if current is Phase.CLOSED:
        raise DomainError("campaign_closed", "the campaign is closed")
    if not eligible:
        raise DomainError("not_eligible", "this voter is not in the campaign's electorate")
    if already_voted:
        raise DomainError("already_voted", "one voter, one ballot: this voter's ballot is already in the box")
    return Ballot(_score(score), _comment(comment))


@dataclass(frozen=True)
class Tally:
    counts: Mapping[int, int]  # score -> ballots

    @property
    def turnout(self) -> int:
        return sum(self.counts.get(s, 0) for s in SCORES)

    @property
    def average(self) -> float:
        total = sum(s * self.counts.get(s, 0) for s in SCORES)
        return round(total / self.turnout, 2) if self.turnout else 0.0

    @property
    def distribution(self) -> dict[str, int]:
        return {str(s): self.counts.get(s, 0) for s in SCORES}


def results_visible(campaign: Campaign, turnout: int) -> bool:
    return turnout >= campaign.min_turnout


def closable(campaign: Campaign) -> None:
    """Checked before the box is opened, and again by `close_campaign`."""
    if campaign.recorded_closed:
        raise DomainError("campaign_closed", "the campaign is already closed")


def close_campaign(campaign: Campaign, now: datetime, turnout: int, tally: Tally | None) -> list[DomainEvent]:
    """Close by command before the deadline, or record the deadline's close; publish results if enough voted.

    `turnout` is the register's count; `tally` is the opened sum of the box, which is opened only when
    `results_visible` (below the minimum the box is discarded unread, and `tally` is None).
    """
    closable(campaign)
    early = now < campaign.closes_at
    shown = results_visible(campaign, turnout)
    if shown and (tally is None or tally.turnout != turnout):
        raise ValueError(f"the box's tally ({tally and tally.turnout}) does not match the register ({turnout})")
    events: list[DomainEvent] = [
        CampaignClosed(
            campaign_id=campaign.campaign_id,
            reason="early" if early else "deadline",
            closed_at=now if early else campaign.closes_at,
            turnout=turnout,
            eligible=campaign.eligible,
            results_shown=shown,
        )
    ]
    if shown and tally is not None:
        events.append(
            ResultsPublished(
                campaign_id=campaign.campaign_id,
                subject_type=campaign.subject_type,
                subject_id=campaign.subject_id,
                turnout=tally.turnout,
                eligible=campaign.eligible,
                average=tally.average,
                distribution=tally.distribution,
            )
        )
    return events


def results(campaign: Campaign, now: datetime) -> ResultsPublished:
    if phase(campaign, now) is not Phase.CLOSED or not campaign.recorded_closed:
        raise DomainError("campaign_open", "results are shown once the campaign is closed")
    if campaign.results is None:
        raise DomainError(
            "turnout_too_low",
            f"{campaign.turnout} voted, fewer than the minimum of {campaign.min_turnout}: the results are not shown",
        )
    return campaign.results


# --- members' requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRef:
    """A member as the membership topic told us: enough to route a request to their organisation."""

    member_id: UUID
    org_id: UUID
    status: MemberStatus


@dataclass(frozen=True)
class RaiseRequest:
    request_id: UUID
    member_id: UUID
    category: str
    text: str


def raise_request(cmd: RaiseRequest, member: MemberRef | None) -> list[DomainEvent]:
    if member is None:
        raise NotFoundError("member", cmd.member_id)
    if member.status.ended:
        raise DomainError("member_terminated", f"the membership has ended ({member.status})")
    return [
        RequestRaised(
            request_id=cmd.request_id,
            member_id=member.member_id,
            org_id=member.org_id,
            category=cmd.category,
            text=cmd.text,
        )
    ]


@dataclass(frozen=True)
class Request:
    request_id: UUID
    member_id: UUID
    org_id: UUID
    answered: bool = False


def answer_request(request: Request, by: str, text: str) -> list[DomainEvent]:
    if request.answered:
        raise DomainError("request_answered", "the request is already answered")
    return [
        RequestAnswered(
            request_id=request.request_id, member_id=request.member_id, org_id=request.org_id, by=by, text=text
        )
    ]


# --- evolve --------------------------------------------------------------------------------------------

State = Campaign | Request | RatingGiven | None


def fold(events: Sequence[DomainEvent]) -> State:
    state: State = None
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: State, event: DomainEvent) -> State:  # noqa: PLR0911 - one arm per event type
    match event:
        case CampaignOpened():
            return Campaign(
                event.campaign_id,
                SubjectType(event.subject_type),
                event.subject_id,
                event.opens_at,
                event.closes_at,
                event.min_turnout,
                event.eligible,
            )
        case CampaignClosed() if isinstance(state, Campaign):
            return replace(state, closed_at=event.closed_at, turnout=event.turnout)
        case ResultsPublished() if isinstance(state, Campaign):
            return replace(state, results=event)
        case RequestRaised():
            return Request(event.request_id, event.member_id, event.org_id)
        case RequestAnswered() if isinstance(state, Request):
            return replace(state, answered=True)
        case RatingGiven():
            return event
    return state
