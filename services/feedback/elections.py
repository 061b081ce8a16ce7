"""Union elections (工会基层组织选举) as deciders: decide(command, state) -> events; evolve(state, event) -> state.

The numbers come from the 工会基层组织选举工作条例 (ACFTU, 2016) and are settings of each election (`Rules`), with
the regulation's value as the default. As with campaigns, a ballot is never an event: `cast_ballot` returns an
`ElectionBallot` (approvals, no voter) that the handler seals and drops into the round's box; the count publishes
the sum, its proven decryption and the outcome, which `count_round` computes from the tally alone, so that anyone
can re-run it from the published data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from services.feedback.events import (
    CandidateNominated,
    CandidatesConfirmed,
    ElectionCalled,
    ElectionConcluded,
    ElectionFailed,
    ElectionRoundCounted,
    ElectionRoundOpened,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent

MAX_CANDIDATES = 60  # a ballot's proofs grow with the candidates; a committee of a grassroots union is smaller


class Body(StrEnum):
    COMMITTEE = "committee"  # 工会委员会委员
    CHAIR = "chair"  # 主席
    VICE_CHAIR = "vice_chair"  # 副主席


class Assembly(StrEnum):
    MEMBERS = "members"  # 会员大会: every active member of the organisation's subtree votes
    REPRESENTATIVES = "representatives"  # 会员代表大会: the elected representatives vote


class MajorityBase(StrEnum):
    ENTITLED = "entitled"  # 应到会人数: everyone entitled to vote
    PRESENT = "present"  # 实到会人数: those who took part (here: who cast a ballot)


class Status(StrEnum):
    NOMINATING = "nominating"
    CONFIRMED = "confirmed"
    VOTING = "voting"
    BETWEEN_ROUNDS = "between_rounds"  # a round was counted (or void) and a further one is due
    CONCLUDED = "concluded"
    FAILED = "failed"


@dataclass(frozen=True)
class Rules:
    """Every number of the election, defaulting to the regulation's."""

    # 第十七条: 参加选举的人数为应到会人数的三分之二以上时，方可进行选举 ("以上" includes two thirds itself)
    quorum: Fraction = Fraction(2, 3)
    # 被选举人获得应到会人数的过半数赞成票时，始得当选 (the regulation's base is those entitled; some unions'
    # own election rules use those present, hence a setting)
    majority_base: MajorityBase = MajorityBase.ENTITLED
    # 选举工会委员会委员实行差额选举，差额率不低于5%; chair and vice-chairs may be elected 等额 (margin 0)
    min_margin: Fraction = Fraction(5, 100)
    # ties and unfilled seats go to further rounds (再次投票 / 另行选举); the regulation sets no limit, this does
    max_rounds: int = 3

    @classmethod
    def default_for(cls, body: Body) -> Rules:
        return cls() if body is Body.COMMITTEE else cls(min_margin=Fraction(0))


def parse_fraction(field_name: str, value: str) -> Fraction:
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidInputError(field_name, f"{field_name} must be a fraction such as 2/3 or a decimal") from None


# --- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    number: int
    seats: int
    candidates: tuple[UUID, ...]
    opens_at: datetime
    closes_at: datetime
    eligible: int
    public_keys: tuple[str, ...]
    counted: ElectionRoundCounted | None = None


@dataclass(frozen=True)
class Election:
    election_id: UUID
    org_id: UUID
    title: str
    body: Body
    assembly: Assembly
    seats: int
    rules: Rules
    representatives: tuple[UUID, ...] = ()
    status: Status = Status.NOMINATING
    nominated: tuple[UUID, ...] = ()
    member_nos: Mapping[UUID, str] = field(default_factory=dict)
    candidates: tuple[UUID, ...] = ()
    voters: frozenset[UUID] = frozenset()
    electorate_member_nos: tuple[str, ...] = ()
    rounds: tuple[Round, ...] = ()
    elected: tuple[UUID, ...] = ()
    next_candidates: tuple[UUID, ...] = ()
    next_seats: int = 0

    @property
    def current(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None


# --- calling the election and its candidates ------------------------------------------------------------


@dataclass(frozen=True)
class CallElection:
    election_id: UUID
    org_id: UUID
    title: str
    body: Body
    assembly: Assembly
    seats: int
    rules: Rules
    representatives: tuple[UUID, ...] = ()


def call_election(cmd: CallElection, *, org_known: bool) -> list[DomainEvent]:
    if not org_known:
        raise NotFoundError("organization", cmd.org_id)
    if cmd.seats < 1:
        raise InvalidInputError("seats", "an election fills at least one seat")
    if cmd.body is Body.CHAIR and cmd.seats != 1:
        raise InvalidInputError("seats", "a union has one chair")
    if not 0 < cmd.rules.quorum <= 1:
        raise InvalidInputError("quorum", "the quorum is a share of the entitled voters, above 0 and at most 1")
    if cmd.rules.min_margin < 0:
        raise InvalidInputError("min_margin", "the minimum 差额 rate cannot be negative")
    if cmd.body is Body.COMMITTEE and cmd.rules.min_margin <= 0:
        raise InvalidInputError("min_margin", "a committee is elected with more candidates than seats (差额)")
    if cmd.rules.max_rounds < 1:
        raise InvalidInputError("max_rounds", "an election has at least one round")
    if cmd.assembly is Assembly.REPRESENTATIVES and not cmd.representatives:
        raise InvalidInputError("representatives", "a representatives' assembly names its representatives")
    if cmd.assembly is Assembly.MEMBERS and cmd.representatives:
        raise InvalidInputError("representatives", "a members' assembly is every member: name no representatives")
    return [
        ElectionCalled(
            election_id=cmd.election_id,
            org_id=cmd.org_id,
            title=cmd.title,
            body=cmd.body,
            assembly=cmd.assembly,
            seats=cmd.seats,
            quorum=str(cmd.rules.quorum),
            majority_base=cmd.rules.majority_base,
            min_margin=str(cmd.rules.min_margin),
            max_rounds=cmd.rules.max_rounds,
            representatives=tuple(sorted(set(cmd.representatives), key=str)),
        )
    ]


def _existing(election: Election | None, election_id: UUID) -> Election:
    if election is None:
        raise NotFoundError("election", election_id)
    return election


def nominate(
    election: Election | None, election_id: UUID, candidate_id: UUID, member_no: str | None
) -> list[DomainEvent]:
    """`member_no`: the candidate as an active member of the organisation's subtree, None if they are not."""
    election = _existing(election, election_id)
    if election.status is not Status.NOMINATING:
        raise DomainError("candidates_confirmed", "the candidates are confirmed: nominations are closed")
    if member_no is None:
        raise DomainError("not_eligible", "a candidate is an active member of the organisation or below it")
    if candidate_id in election.nominated:
        raise DomainError("already_nominated", "this member is already a candidate")
    if len(election.nominated) >= MAX_CANDIDATES:
        raise DomainError("too_many_candidates", f"an election has at most {MAX_CANDIDATES} candidates")
    return [CandidateNominated(election_id=election.election_id, candidate_id=candidate_id, member_no=member_no)]


def margin_allows(rules: Rules, seats: int, candidates: int) -> bool:
    """差额率 = (candidates - seats) / seats, at least the rule's minimum; never fewer candidates than seats."""
    return candidates >= seats and Fraction(candidates - seats, seats) >= rules.min_margin


def confirm_candidates(election: Election | None, election_id: UUID) -> list[DomainEvent]:
    election = _existing(election, election_id)
    if election.status is not Status.NOMINATING:
        raise DomainError("candidates_confirmed", "the candidates are already confirmed")
    if not margin_allows(election.rules, election.seats, len(election.nominated)):
        needed = election.seats + _ceil(election.rules.min_margin * election.seats)
        raise DomainError(
            "margin_too_small",
            f"{len(election.nominated)} candidates for {election.seats} seats: the 差额 rule "
            f"(at least {election.rules.min_margin} more) needs at least {needed}",
        )
    return [CandidatesConfirmed(election_id=election.election_id, candidates=election.nominated, seats=election.seats)]


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


# --- rounds ---------------------------------------------------------------------------------------------


def open_round(
    election: Election | None,
    election_id: UUID,
    now: datetime,
    opens_at: datetime,
    closes_at: datetime,
    *,
    electorate: Sequence[tuple[UUID, str]],
    public_keys: Sequence[str],
) -> list[DomainEvent]:
    """The first round fixes and publishes the electorate (`electorate`: member id and number, as the directory
    knows them now); a further round is among the candidates the last count left, with the same electorate."""
    election = _existing(election, election_id)
    if closes_at <= opens_at or closes_at <= now:
        raise InvalidInputError("closes_at", "closes_at must be after opens_at and in the future")
    if election.status is Status.CONFIRMED:
        candidates, seats = election.candidates, election.seats
        fixed = sorted(set(electorate))
        voters = tuple(sorted((m for m, _ in fixed), key=str))
        member_nos = tuple(sorted(n for _, n in fixed))
    elif election.status is Status.BETWEEN_ROUNDS:
        candidates, seats = election.next_candidates, election.next_seats
        voters = tuple(sorted(election.voters, key=str))
        member_nos = election.electorate_member_nos
    elif election.status is Status.NOMINATING:
        raise DomainError("candidates_not_confirmed", "the candidates are confirmed before the vote")
    else:
        raise DomainError("election_not_open", f"the election is {election.status}")
    if not voters:
        raise DomainError("electorate_empty", "nobody may vote in this election")
    if len(public_keys) != len(candidates):
        raise ValueError("one public key per candidate")
    return [
        ElectionRoundOpened(
            election_id=election.election_id,
            round=len(election.rounds) + 1,
            seats=seats,
            candidates=candidates,
            opens_at=opens_at,
            closes_at=closes_at,
            eligible=len(voters),
            electorate_member_nos=member_nos,
            public_keys=tuple(public_keys),
            voters=voters,
        )
    ]


@dataclass(frozen=True)
class ElectionBallot:
    """What goes into the box: one 0/1 per candidate of the round, in its order. No voter, no time, no id."""

    approvals: tuple[int, ...]


def _voting_round(election: Election, now: datetime) -> Round:
    current = election.current
    if election.status is not Status.VOTING or current is None or now >= current.closes_at:
        raise DomainError("election_closed", "no round of this election is open for voting")
    if now < current.opens_at:
        raise DomainError("election_closed", "the round is not open yet")
    return current


def cast_ballot(
    election: Election, now: datetime, *, voter_id: UUID, already_voted: bool, approve: Sequence[UUID]
) -> ElectionBallot:
    current = _voting_round(election, now)
    if voter_id not in election.voters:
        raise DomainError("not_eligible", "this voter is not in the election's published electorate")
    if already_voted:
        raise DomainError("already_voted", "one voter, one ballot per round: this voter's ballot is in the box")
    chosen = set(approve)
    if len(chosen) != len(approve):
        raise InvalidInputError("approve", "a candidate is approved at most once")
    if not chosen <= set(current.candidates):
        raise InvalidInputError("approve", "approve only candidates of this round")
    if len(chosen) > current.seats:
        # 每张选票所选人数多于应选人数的为无效票: refused at the box rather than counted as void
        raise InvalidInputError("approve", f"approve at most {current.seats} candidates (the seats of this round)")
    return ElectionBallot(tuple(int(c in chosen) for c in current.candidates))


def closable(election: Election | None, election_id: UUID) -> Round:
    election = _existing(election, election_id)
    if election.status is not Status.VOTING or election.current is None:
        raise DomainError("election_closed", "no round of this election is open")
    return election.current


def quorum_met(rules: Rules, eligible: int, turnout: int) -> bool:
    return Fraction(turnout) >= rules.quorum * eligible


@dataclass(frozen=True)
class Outcome:
    elected: tuple[UUID, ...]
    tied: tuple[UUID, ...]
    next_candidates: tuple[UUID, ...]
    next_seats: int


def count_round(
    rules: Rules, seats: int, candidates: Sequence[UUID], tally: Mapping[UUID, int], eligible: int, turnout: int
) -> Outcome:
    """Who a counted round elects, from its tally alone (tests/support/election_audit.py re-implements it).

    A candidate needs more than half of the base (those entitled, or those present). If more candidates than
    seats have it, the most votes win (得赞成票多的当选); equal votes that straddle the last seat go to a further
    round among them (就票数相等的被选举人再次投票). Seats left unfilled go to a further round among the
    candidates not elected (另行选举).
    """
    base = eligible if rules.majority_base is MajorityBase.ENTITLED else turnout
    majority = sorted((c for c in candidates if 2 * tally.get(c, 0) > base), key=lambda c: (-tally.get(c, 0), str(c)))
    elected: tuple[UUID, ...]
    tied: tuple[UUID, ...]
    if len(majority) <= seats:
        elected, tied = tuple(majority), ()
    else:
        cutoff = tally[majority[seats - 1]]
        above = tuple(c for c in majority if tally[c] > cutoff)
        at = tuple(c for c in majority if tally[c] == cutoff)
        elected, tied = (above + at, ()) if len(above) + len(at) <= seats else (above, at)
    left = seats - len(elected)
    following = tied or (tuple(c for c in candidates if c not in elected) if left else ())
    return Outcome(elected, tuple(sorted(tied, key=str)), tuple(sorted(following, key=str)), left if following else 0)


def close_round(
    election: Election | None,
    election_id: UUID,
    *,
    turnout: int,
    tally: Mapping[UUID, int] | None,
    ballots_digest: str = "",
    summed: str = "",
    decryption_proofs: Sequence[str] = (),
) -> list[DomainEvent]:
    """Record a round's count. `tally` is the proven decryption of the published ballots, None when the quorum was
    not met (the box is then discarded unread)."""
    current = closable(election, election_id)
    assert election is not None
    if turnout > current.eligible:  # only a register written by hand holds more voters than the electorate
        raise DomainError(
            "count_refused", f"the register holds {turnout} voters for an electorate of {current.eligible}"
        )
    met = quorum_met(election.rules, current.eligible, turnout)
    if met != (tally is not None):
        raise ValueError("the box is opened exactly when the quorum is met")
    if tally is not None and sum(tally.values()) > current.seats * turnout:
        raise ValueError("the tally holds more approvals than the ballots allow")
    if tally is None:
        outcome = Outcome((), (), current.candidates, current.seats)
    else:
        outcome = count_round(election.rules, current.seats, current.candidates, tally, current.eligible, turnout)
    counted = ElectionRoundCounted(
        election_id=election.election_id,
        round=current.number,
        eligible=current.eligible,
        turnout=turnout,
        quorum_met=met,
        tally={str(c): tally.get(c, 0) for c in current.candidates} if tally is not None else {},
        ballots_digest=ballots_digest,
        summed=summed,
        decryption_proofs=tuple(decryption_proofs),
        elected=outcome.elected,
        tied=outcome.tied,
        next_candidates=outcome.next_candidates,
        next_seats=outcome.next_seats,
    )
    events: list[DomainEvent] = [counted]
    elected = election.elected + outcome.elected
    last_round = current.number >= election.rules.max_rounds
    if outcome.next_seats == 0 or (last_round and elected):
        # every seat filled, or the rounds are spent: fewer elected than seats (不足应选名额) stands
        events.append(
            ElectionConcluded(
                election_id=election.election_id,
                org_id=election.org_id,
                body=election.body,
                seats=election.seats,
                elected=elected,
                rounds=current.number,
            )
        )
    elif last_round:
        events.append(
            ElectionFailed(
                election_id=election.election_id,
                org_id=election.org_id,
                reason="quorum_not_met" if not met else "nobody_elected",
                rounds=current.number,
            )
        )
    return events


# --- evolve --------------------------------------------------------------------------------------------


def fold(events: Sequence[DomainEvent]) -> Election | None:
    state: Election | None = None
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: Election | None, event: DomainEvent) -> Election | None:  # noqa: PLR0911 - one arm per event
    match event:
        case ElectionCalled():
            rules = Rules(
                Fraction(event.quorum), MajorityBase(event.majority_base), Fraction(event.min_margin), event.max_rounds
            )
            return Election(
                event.election_id,
                event.org_id,
                event.title,
                Body(event.body),
                Assembly(event.assembly),
                event.seats,
                rules,
                event.representatives,
            )
        case CandidateNominated() if state is not None:
            return replace(
                state,
                nominated=(*state.nominated, event.candidate_id),
                member_nos={**state.member_nos, event.candidate_id: event.member_no},
            )
        case CandidatesConfirmed() if state is not None:
            return replace(state, status=Status.CONFIRMED, candidates=event.candidates)
        case ElectionRoundOpened() if state is not None:
            opened = Round(
                event.round,
                event.seats,
                event.candidates,
                event.opens_at,
                event.closes_at,
                event.eligible,
                event.public_keys,
            )
            return replace(
                state,
                status=Status.VOTING,
                voters=frozenset(event.voters),
                electorate_member_nos=event.electorate_member_nos,
                rounds=(*state.rounds, opened),
            )
        case ElectionRoundCounted() if state is not None and state.rounds:
            last = replace(state.rounds[-1], counted=event)
            return replace(
                state,
                status=Status.BETWEEN_ROUNDS,
                rounds=(*state.rounds[:-1], last),
                elected=state.elected + event.elected,
                next_candidates=event.next_candidates,
                next_seats=event.next_seats,
            )
        case ElectionConcluded() if state is not None:
            return replace(state, status=Status.CONCLUDED, elected=event.elected)
        case ElectionFailed() if state is not None:
            return replace(state, status=Status.FAILED)
    return state
