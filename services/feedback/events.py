"""Feedback's events. There is no ballot event, on purpose: a ballot is never a fact with a position or a time."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("feedback")


# --- ratings: stream rating-<redemption_id> -------------------------------------------------------------


@registry.register
class RatingGiven(DomainEvent):
    redemption_id: UUID
    member_id: UUID
    item_id: UUID
    category: str
    org_id: UUID  # the organisation that gave the service (the member's when it was redeemed)
    score: int
    month: str  # YYYY-MM of the redemption, China Standard Time
    comment: str | None = None
    # free text from a member can hold anything (names, phone numbers): it stays in this service
    private_fields: ClassVar[frozenset[str]] = frozenset({"comment"})

    def partition_key(self) -> str:
        return str(self.redemption_id)


# --- evaluation campaigns: stream campaign-<campaign_id> ------------------------------------------------


@registry.register
class CampaignOpened(DomainEvent):
    campaign_id: UUID
    title: str
    subject_type: str
    subject_id: UUID
    electorate_org_id: UUID
    electorate: str
    opens_at: datetime
    closes_at: datetime
    min_turnout: int
    eligible: int
    # the electorate fixed at opening, sorted: kept in the store for audit and rebuilds, never on the topic
    eligible_voters: tuple[UUID, ...] = ()
    # the point of membership's log the electorate was taken at (`membership:1234`): every membership event up to
    # it is in the electorate (later ones may be too); None for campaigns opened before it was recorded
    electorate_as_of: str | None = None
    private_fields: ClassVar[frozenset[str]] = frozenset({"eligible_voters"})

    def partition_key(self) -> str:
        return str(self.campaign_id)


@registry.register
class CampaignClosed(DomainEvent):
    campaign_id: UUID
    reason: str  # "early" (closed by command) or "deadline"
    closed_at: datetime
    turnout: int
    eligible: int
    results_shown: bool  # False: turnout below the minimum, the ballots were discarded unread

    def partition_key(self) -> str:
        return str(self.campaign_id)


@registry.register
class ResultsPublished(DomainEvent):
    campaign_id: UUID
    subject_type: str
    subject_id: UUID
    turnout: int
    eligible: int
    average: float
    distribution: dict[str, int]  # "1".."5" -> ballots

    def partition_key(self) -> str:
        return str(self.campaign_id)


# --- members' requests and complaints: stream request-<request_id> --------------------------------------


@registry.register
class RequestRaised(DomainEvent):
    request_id: UUID
    member_id: UUID
    org_id: UUID
    category: str
    text: str
    private_fields: ClassVar[frozenset[str]] = frozenset({"text"})


@registry.register
class RequestAnswered(DomainEvent):
    request_id: UUID
    member_id: UUID
    org_id: UUID
    by: str
    text: str
    private_fields: ClassVar[frozenset[str]] = frozenset({"text"})
