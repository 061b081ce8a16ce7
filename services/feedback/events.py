"""Feedback's events. Their published shape is feedback's published language (published/feedback.py); each class here
adds what the service keeps to itself. There is no ballot event, on purpose: a ballot is never a fact with a position
or a time."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from published import feedback as public
from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("feedback")


# --- ratings: stream rating-<redemption_id> -------------------------------------------------------------


@registry.register
class RatingGiven(public.RatingGiven, DomainEvent):
    comment: str | None = None
    # free text from a member can hold anything (names, phone numbers): it stays in this service
    private_fields: ClassVar[frozenset[str]] = frozenset({"comment"})

    def partition_key(self) -> str:
        return str(self.redemption_id)


# --- evaluation campaigns: stream campaign-<campaign_id> ------------------------------------------------


@registry.register
class CampaignOpened(public.CampaignOpened, DomainEvent):
    # the electorate fixed at opening, sorted: kept in the store for audit and rebuilds, never on the topic
    eligible_voters: tuple[UUID, ...] = ()
    private_fields: ClassVar[frozenset[str]] = frozenset({"eligible_voters"})

    def partition_key(self) -> str:
        return str(self.campaign_id)


@registry.register
class CampaignClosed(public.CampaignClosed, DomainEvent):
    def partition_key(self) -> str:
        return str(self.campaign_id)


@registry.register
class ResultsPublished(public.ResultsPublished, DomainEvent):
    def partition_key(self) -> str:
        return str(self.campaign_id)


# --- members' requests and complaints: stream request-<request_id> --------------------------------------


@registry.register
class RequestRaised(public.RequestRaised, DomainEvent):
    text: str  # what the member wrote: stays in this service
    private_fields: ClassVar[frozenset[str]] = frozenset({"text"})


@registry.register
class RequestAnswered(public.RequestAnswered, DomainEvent):
    text: str
    private_fields: ClassVar[frozenset[str]] = frozenset({"text"})


# --- union elections (工会基层组织选举): stream election-<election_id> --------------------------------------
# Public facts: who may vote (member numbers), the candidates, each round's keys, tally, proofs and who was elected.
# Never a ballot: the published ballot set (ciphertexts and proofs) is served by the API, and its digest is here.


class _ElectionEvent(public.ElectionEvent, DomainEvent):
    def partition_key(self) -> str:
        return str(self.election_id)


@registry.register
class ElectionCalled(public.ElectionCalled, _ElectionEvent):
    # the representatives who vote at a representatives' assembly (member ids), fixed when the vote opens
    representatives: tuple[UUID, ...] = ()
    private_fields: ClassVar[frozenset[str]] = frozenset({"representatives"})


@registry.register
class CandidateNominated(public.CandidateNominated, _ElectionEvent):
    pass


@registry.register
class CandidatesConfirmed(public.CandidatesConfirmed, _ElectionEvent):
    pass


@registry.register
class ElectionRoundOpened(public.ElectionRoundOpened, _ElectionEvent):
    voters: tuple[UUID, ...] = ()  # the same electorate as member ids, sorted: for the eligibility check
    private_fields: ClassVar[frozenset[str]] = frozenset({"voters"})


@registry.register
class ElectionRoundCounted(public.ElectionRoundCounted, _ElectionEvent):
    pass


@registry.register
class ElectionConcluded(public.ElectionConcluded, _ElectionEvent):
    pass


@registry.register
class ElectionFailed(public.ElectionFailed, _ElectionEvent):
    pass
