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


# --- union elections (工会基层组织选举): stream election-<election_id> --------------------------------------
# Public facts: who may vote (member numbers), the candidates, each round's keys, tally, proofs and who was elected.
# Never a ballot: the published ballot set (ciphertexts and proofs) is served by the API, and its digest is here.


@registry.register
class ElectionCalled(DomainEvent):
    election_id: UUID
    org_id: UUID
    title: str
    body: str  # committee | chair | vice_chair
    assembly: str  # members (会员大会) | representatives (会员代表大会)
    seats: int
    quorum: str  # a fraction of the entitled voters who must vote, "2/3"
    majority_base: str  # entitled (应到会人数) | present (实到会人数)
    min_margin: str  # 差额率: (candidates - seats) / seats at least this, "1/20"
    max_rounds: int
    # the representatives who vote at a representatives' assembly (member ids), fixed when the vote opens
    representatives: tuple[UUID, ...] = ()
    private_fields: ClassVar[frozenset[str]] = frozenset({"representatives"})

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class CandidateNominated(DomainEvent):
    election_id: UUID
    candidate_id: UUID  # a member id
    member_no: str

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class CandidatesConfirmed(DomainEvent):
    election_id: UUID
    candidates: tuple[UUID, ...]
    seats: int

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class ElectionRoundOpened(DomainEvent):
    election_id: UUID
    round: int
    seats: int
    candidates: tuple[UUID, ...]
    opens_at: datetime
    closes_at: datetime
    eligible: int
    electorate_member_nos: tuple[str, ...]  # published before voting opens: who may vote, sorted
    public_keys: tuple[str, ...]  # hex, one per candidate, in the order of `candidates`
    voters: tuple[UUID, ...] = ()  # the same electorate as member ids, sorted: for the eligibility check
    private_fields: ClassVar[frozenset[str]] = frozenset({"voters"})

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class ElectionRoundCounted(DomainEvent):
    election_id: UUID
    round: int
    eligible: int
    turnout: int
    quorum_met: bool
    tally: dict[str, int]  # candidate id -> approvals; empty when the quorum was not met (ballots discarded unread)
    ballots_digest: str  # SHA-256 over the sorted receipts of the published ballot set, "" when none is published
    summed: str  # hex of the sum of the published ciphertexts
    decryption_proofs: tuple[str, ...]  # per candidate: D, a1, a2, s (election_sealing.Decryption), hex
    elected: tuple[UUID, ...]
    tied: tuple[UUID, ...]  # candidates whose equal votes left a seat undecided: they go to a further round
    next_candidates: tuple[UUID, ...]
    next_seats: int

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class ElectionConcluded(DomainEvent):
    election_id: UUID
    org_id: UUID
    body: str
    seats: int
    elected: tuple[UUID, ...]
    rounds: int

    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class ElectionFailed(DomainEvent):
    election_id: UUID
    org_id: UUID
    reason: str  # quorum_not_met
    rounds: int

    def partition_key(self) -> str:
        return str(self.election_id)
