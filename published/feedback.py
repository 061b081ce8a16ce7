"""Feedback's published language: its events as their consumers read them (membership's work queue and the member's
dossier read members' requests). What a member wrote (a comment, a request's text) and who may vote stay in the
service. There is no ballot event, on purpose: a ballot is never a fact with a position or a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from published.base import PublishedEvent, Vocabulary

SOURCE = "/union/feedback"
TOPIC = "union.feedback.v1"


# --- ratings: stream rating-<redemption_id> -------------------------------------------------------------


class RatingGiven(PublishedEvent):
    redemption_id: UUID
    member_id: UUID
    item_id: UUID
    category: str
    org_id: UUID  # the organisation that gave the service (the member's when it was redeemed)
    score: int
    month: str  # YYYY-MM of the redemption, China Standard Time


# --- evaluation campaigns: stream campaign-<campaign_id> ------------------------------------------------


class CampaignOpened(PublishedEvent):
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
    # the point of membership's log the electorate was taken at (`membership:1234`): every membership event up to
    # it is in the electorate (later ones may be too); None for campaigns opened before it was recorded
    electorate_as_of: str | None = None


class CampaignClosed(PublishedEvent):
    campaign_id: UUID
    reason: str  # "early" (closed by command) or "deadline"
    closed_at: datetime
    turnout: int
    eligible: int
    results_shown: bool  # False: turnout below the minimum, the ballots were discarded unread


class ResultsPublished(PublishedEvent):
    campaign_id: UUID
    subject_type: str
    subject_id: UUID
    turnout: int
    eligible: int
    average: float
    distribution: dict[str, int]  # "1".."5" -> ballots


# --- members' requests and complaints: stream request-<request_id> --------------------------------------


class RequestRaised(PublishedEvent):
    request_id: UUID
    member_id: UUID
    org_id: UUID
    category: str


class RequestAnswered(PublishedEvent):
    request_id: UUID
    member_id: UUID
    org_id: UUID
    by: str


# --- union elections (工会基层组织选举): stream election-<election_id> --------------------------------------
# Public facts: who may vote (member numbers), the candidates, each round's keys, tally, proofs and who was elected.
# Never a ballot: the published ballot set (ciphertexts and proofs) is served by the API, and its digest is here.


class ElectionEvent(PublishedEvent):
    """An event about one election (the Kafka key: its events stay in order)."""

    election_id: UUID


class ElectionCalled(ElectionEvent):
    org_id: UUID
    title: str
    body: str  # committee | chair | vice_chair
    assembly: str  # members (会员大会) | representatives (会员代表大会)
    seats: int
    quorum: str  # a fraction of the entitled voters who must vote, "2/3"
    majority_base: str  # entitled (应到会人数) | present (实到会人数)
    min_margin: str  # 差额率: (candidates - seats) / seats at least this, "1/20"
    max_rounds: int


class CandidateNominated(ElectionEvent):
    candidate_id: UUID  # a member id
    member_no: str


class CandidatesConfirmed(ElectionEvent):
    candidates: tuple[UUID, ...]
    seats: int


class ElectionRoundOpened(ElectionEvent):
    round: int
    seats: int
    candidates: tuple[UUID, ...]
    opens_at: datetime
    closes_at: datetime
    eligible: int
    electorate_member_nos: tuple[str, ...]  # published before voting opens: who may vote, sorted
    public_keys: tuple[str, ...]  # hex, one per candidate, in the order of `candidates`


class ElectionRoundCounted(ElectionEvent):
    round: int
    eligible: int
    turnout: int
    quorum_met: bool
    tally: dict[str, int]  # candidate id -> approvals; empty when the quorum was not met (ballots discarded unread)
    ballots_digest: str  # SHA-256 over the sorted receipts of the published ballot set, "" when none is published
    summed: str  # hex of the sum of the published ciphertexts
    decryption_proofs: tuple[str, ...]  # per candidate: D, a1, a2, s (feedback's election_sealing.Decryption), hex
    elected: tuple[UUID, ...]
    tied: tuple[UUID, ...]  # candidates whose equal votes left a seat undecided: they go to a further round
    next_candidates: tuple[UUID, ...]
    next_seats: int


class ElectionConcluded(ElectionEvent):
    org_id: UUID
    body: str
    seats: int
    elected: tuple[UUID, ...]
    rounds: int


class ElectionFailed(ElectionEvent):
    org_id: UUID
    reason: str  # quorum_not_met
    rounds: int


vocabulary = Vocabulary(
    SOURCE,
    [
        RatingGiven,
        CampaignOpened,
        CampaignClosed,
        ResultsPublished,
        RequestRaised,
        RequestAnswered,
        ElectionCalled,
        CandidateNominated,
        CandidatesConfirmed,
        ElectionRoundOpened,
        ElectionRoundCounted,
        ElectionConcluded,
        ElectionFailed,
    ],
)
decode = vocabulary.decode
