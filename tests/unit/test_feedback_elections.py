"""Elections' rules, given events, when a command, then events (or an error); and their ballots' cryptography."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from services.feedback import election_sealing, elections
from services.feedback.elections import Assembly, Body, MajorityBase, Rules, Status
from services.feedback.events import ElectionConcluded, ElectionFailed, ElectionRoundCounted
from shared.errors import DomainError, InvalidInputError

NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)
ORG = uuid.uuid4()
VOTERS = [uuid.UUID(int=i + 1) for i in range(30)]


def called(seats: int = 3, body: Body = Body.COMMITTEE, rules: Rules | None = None) -> elections.Election:
    cmd = elections.CallElection(
        uuid.uuid4(), ORG, "第五届工会委员会", body, Assembly.MEMBERS, seats, rules or Rules.default_for(body)
    )
    state = elections.fold(elections.call_election(cmd, org_known=True))
    assert state is not None
    return state


def apply(state: elections.Election, events: list) -> elections.Election:  # type: ignore[type-arg]
    for event in events:
        state = elections.evolve(state, event)  # type: ignore[assignment]
    return state


def nominated(state: elections.Election, n: int) -> tuple[elections.Election, list[uuid.UUID]]:
    candidates = [uuid.UUID(int=1000 + i) for i in range(n)]
    for c in candidates:
        state = apply(state, elections.nominate(state, state.election_id, c, f"NO-{c.int}"))
    return state, candidates


def voting(seats: int, n: int, rules: Rules | None = None, body: Body = Body.COMMITTEE) -> elections.Election:
    state, _ = nominated(called(seats, body, rules), n)
    state = apply(state, elections.confirm_candidates(state, state.election_id))
    return opened(state)


def opened(state: elections.Election) -> elections.Election:
    seats = len(state.candidates) if state.status is Status.CONFIRMED else len(state.next_candidates)
    events = elections.open_round(
        state,
        state.election_id,
        NOW,
        NOW - timedelta(minutes=1),
        NOW + timedelta(hours=2),
        electorate=[(v, f"M{v.int:04d}") for v in VOTERS],
        public_keys=["00"] * seats,
    )
    return apply(state, events)


def close(state: elections.Election, turnout: int, votes: list[int] | None) -> tuple[elections.Election, list]:  # type: ignore[type-arg]
    current = state.current
    assert current is not None
    tally = None if votes is None else dict(zip(current.candidates, votes, strict=True))
    events = elections.close_round(state, state.election_id, turnout=turnout, tally=tally)
    return apply(state, events), events


# --- 差额 and candidates ---


def test_a_committee_with_a_margin_below_the_minimum_is_refused() -> None:
    state, _ = nominated(called(seats=7), 7)  # 等额 for a committee
    with pytest.raises(DomainError) as refused:
        elections.confirm_candidates(state, state.election_id)
    assert refused.value.code == "margin_too_small"
    state, _ = nominated(called(seats=21), 22)  # 1/21 = 4.8% < 5%
    with pytest.raises(DomainError, match="needs at least 23"):
        elections.confirm_candidates(state, state.election_id)
    state, _ = nominated(called(seats=20), 21)  # exactly 5%
    [confirmed] = elections.confirm_candidates(state, state.election_id)
    assert len(confirmed.candidates) == 21  # type: ignore[attr-defined]


def test_the_margin_is_a_setting_and_a_chair_may_be_elected_unopposed() -> None:
    state, _ = nominated(called(seats=5, rules=Rules(min_margin=Fraction(1, 4))), 6)
    with pytest.raises(DomainError, match="needs at least 7"):
        elections.confirm_candidates(state, state.election_id)
    chair, _ = nominated(called(seats=1, body=Body.CHAIR), 1)
    assert elections.confirm_candidates(chair, chair.election_id)
    with pytest.raises(InvalidInputError):
        elections.call_election(
            elections.CallElection(
                uuid.uuid4(), ORG, "t", Body.COMMITTEE, Assembly.MEMBERS, 3, Rules(min_margin=Fraction(0))
            ),
            org_known=True,
        )


def test_nominations_close_with_the_confirmation_and_a_candidate_is_an_active_member() -> None:
    state, [first, *_] = nominated(called(seats=1, body=Body.CHAIR), 2)
    with pytest.raises(DomainError, match="already"):
        elections.nominate(state, state.election_id, first, "NO-1")
    with pytest.raises(DomainError) as refused:
        elections.nominate(state, state.election_id, uuid.uuid4(), None)
    assert refused.value.code == "not_eligible"
    with pytest.raises(DomainError) as early:
        elections.open_round(
            state, state.election_id, NOW, NOW, NOW + timedelta(hours=1), electorate=[], public_keys=[]
        )
    assert early.value.code == "candidates_not_confirmed"


# --- ballots ---


def test_a_ballot_approves_at_most_the_seats_of_the_round_and_is_cast_once() -> None:
    state = voting(seats=2, n=3)
    a, b, c = state.candidates
    ballot = elections.cast_ballot(state, NOW, voter_id=VOTERS[0], already_voted=False, approve=[c, a])
    assert ballot.approvals == (1, 0, 1)
    assert elections.cast_ballot(state, NOW, voter_id=VOTERS[0], already_voted=False, approve=[]).approvals == (0, 0, 0)
    with pytest.raises(InvalidInputError, match="at most 2"):
        elections.cast_ballot(state, NOW, voter_id=VOTERS[0], already_voted=False, approve=[a, b, c])
    with pytest.raises(DomainError) as twice:
        elections.cast_ballot(state, NOW, voter_id=VOTERS[0], already_voted=True, approve=[a])
    assert twice.value.code == "already_voted"
    with pytest.raises(DomainError) as outsider:
        elections.cast_ballot(state, NOW, voter_id=uuid.uuid4(), already_voted=False, approve=[a])
    assert outsider.value.code == "not_eligible"
    with pytest.raises(DomainError) as late:
        elections.cast_ballot(state, NOW + timedelta(hours=3), voter_id=VOTERS[0], already_voted=False, approve=[a])
    assert late.value.code == "election_closed"


# --- counting ---


def test_a_round_below_the_quorum_is_void_and_another_round_follows() -> None:
    state = voting(seats=2, n=3)  # 30 entitled: two thirds is 20
    state, events = close(state, turnout=19, votes=None)
    [counted] = events
    assert isinstance(counted, ElectionRoundCounted)
    assert not counted.quorum_met
    assert counted.tally == {}
    assert counted.elected == ()
    assert state.status is Status.BETWEEN_ROUNDS
    assert state.next_seats == 2
    assert len(state.next_candidates) == 3
    with pytest.raises(ValueError, match="quorum"):
        elections.close_round(opened(state), state.election_id, turnout=19, tally={})
    state = opened(state)
    state, events = close(state, turnout=20, votes=[17, 16, 3])  # exactly two thirds: 以上 includes it
    assert isinstance(events[-1], ElectionConcluded)
    assert state.status is Status.CONCLUDED
    assert len(state.elected) == 2


def test_quorum_failures_in_every_round_fail_the_election() -> None:
    state = voting(seats=1, n=1, body=Body.CHAIR, rules=Rules(min_margin=Fraction(0), max_rounds=2))
    state, _ = close(state, turnout=3, votes=None)
    state, events = close(opened(state), turnout=3, votes=None)
    assert isinstance(events[-1], ElectionFailed)
    assert events[-1].reason == "quorum_not_met"
    assert state.status is Status.FAILED


def test_a_candidate_needs_more_than_half_of_those_entitled_by_default_or_of_those_present() -> None:
    state = voting(seats=2, n=3)  # 30 entitled; 24 vote
    a, b, c = state.candidates
    _, events = close(state, turnout=24, votes=[16, 15, 5])  # 15 is half of 30: not more
    counted = events[0]
    assert counted.elected == (a,)  # type: ignore[attr-defined]
    assert counted.next_candidates == tuple(sorted((b, c), key=str))
    assert counted.next_seats == 1
    present = voting(seats=2, n=3, rules=Rules(majority_base=MajorityBase.PRESENT))
    _, events = close(present, turnout=24, votes=[16, 15, 5])  # 15 > 24 / 2
    assert events[0].elected == (a, b)
    assert isinstance(events[-1], ElectionConcluded)


def test_a_tie_for_the_last_seat_goes_to_a_further_round_among_the_tied() -> None:
    state = voting(seats=2, n=4)
    a, b, c, _d = state.candidates
    state, events = close(state, turnout=30, votes=[25, 17, 17, 1])
    counted = events[0]
    assert counted.elected == (a,)
    assert set(counted.tied) == {b, c}
    assert set(state.next_candidates) == {b, c}
    assert state.next_seats == 1
    state = opened(state)
    assert state.current is not None
    assert set(state.current.candidates) == {b, c}
    assert state.current.seats == 1
    state, events = close(state, turnout=28, votes=[17, 11] if state.current.candidates[0] == c else [11, 17])
    assert isinstance(events[-1], ElectionConcluded)
    assert events[-1].elected == (a, c)
    assert state.status is Status.CONCLUDED


def test_more_majorities_than_seats_elect_the_most_votes_and_the_rounds_are_bounded() -> None:
    state = voting(seats=2, n=3)
    a, b, _c = state.candidates
    _, events = close(state, turnout=30, votes=[20, 24, 16])
    assert events[0].elected == (b, a)  # type: ignore[attr-defined]
    short = voting(seats=2, n=3, rules=Rules(max_rounds=1))
    _, events = close(short, turnout=30, votes=[18, 10, 9])
    assert isinstance(events[-1], ElectionConcluded)
    assert events[-1].elected == (a,)


def test_the_electorate_is_fixed_by_the_first_round_and_published_as_member_numbers() -> None:
    state = voting(seats=2, n=3)
    state, _ = close(state, turnout=10, votes=None)
    again = elections.open_round(
        state,
        state.election_id,
        NOW,
        NOW,
        NOW + timedelta(hours=1),
        electorate=[(uuid.uuid4(), "X")],
        public_keys=["00"] * 3,
    )
    [event] = again
    assert event.eligible == 30
    assert event.electorate_member_nos[0] == "M0001"
    assert "voters" not in event.public_data()


# --- the ballots' cryptography ---


def test_sealed_ballots_prove_their_form_and_the_count_proves_its_decryption() -> None:
    election_id = uuid.uuid4()
    keys = election_sealing.RoundKeys.derive(b"k" * 32, election_id, 1, 3)
    votes = [(1, 0, 1), (0, 0, 0), (1, 1, 0), (0, 1, 0)]
    sealed = [election_sealing.seal(election_id, 1, keys.public, v, 2) for v in votes]
    assert all(election_sealing.verify_ballot(election_id, 1, keys.public, 2, s.ciphertext, s.proof) for s in sealed)
    assert len({len(s.ciphertext) for s in sealed}) == 1
    assert len({s.receipt for s in sealed}) == 4
    # a proof is bound to its ballot, its round and its seats
    assert not election_sealing.verify_ballot(election_id, 2, keys.public, 2, sealed[0].ciphertext, sealed[0].proof)
    assert not election_sealing.verify_ballot(election_id, 1, keys.public, 2, sealed[1].ciphertext, sealed[0].proof)
    assert not election_sealing.verify_ballot(election_id, 1, keys.public, 1, sealed[0].ciphertext, sealed[0].proof)
    summed = election_sealing.add_up((s.ciphertext for s in sealed), 3)
    counts, proofs = election_sealing.decrypt_with_proof(election_id, 1, keys, summed, 4)
    assert counts == [2, 2, 1]
    assert election_sealing.verify_count(election_id, 1, keys.public, summed, proofs, 4) == [2, 2, 1]
    other = election_sealing.add_up((s.ciphertext for s in sealed[:3]), 3)
    with pytest.raises(election_sealing.ElectionSealingError):
        election_sealing.verify_count(election_id, 1, keys.public, other, proofs, 4)


def test_a_ballot_with_two_votes_for_one_candidate_cannot_prove_itself() -> None:
    election_id = uuid.uuid4()
    keys = election_sealing.RoundKeys.derive(b"k" * 32, election_id, 1, 2)
    honest = election_sealing.seal(election_id, 1, keys.public, (1, 0), 1)
    # a forged ciphertext: the honest one plus G on the first counter (two votes for candidate 0)
    from coincurve import PrivateKey, PublicKey  # noqa: PLC0415

    g = PrivateKey.from_int(1).public_key
    first = PublicKey(honest.ciphertext[65:130])
    forged = (
        honest.ciphertext[:65] + PublicKey.combine_keys([first, g]).format(compressed=False) + honest.ciphertext[130:]
    )
    assert not election_sealing.verify_ballot(election_id, 1, keys.public, 1, forged, honest.proof)


def test_a_turnout_above_the_electorate_is_refused_at_the_close() -> None:
    """Issue 30, finding 2: more ballots than voters entitled can only come from a register written by hand."""
    state = voting(seats=2, n=3)  # 30 entitled
    current = state.current
    assert current is not None
    with pytest.raises(DomainError) as refused:
        elections.close_round(state, state.election_id, turnout=31, tally=dict.fromkeys(current.candidates, 20))
    assert refused.value.code == "count_refused"


def test_a_ballot_whose_points_are_re_encoded_does_not_verify() -> None:
    """Issue 30, finding 1: libsecp256k1 also parses the "hybrid" encoding (0x06/0x07, x, y) of a point; the proofs
    hash the 0x04 form, so a re-encoded ballot would check out under another receipt. Only 0x04 is a ballot."""
    election_id = uuid.uuid4()
    keys = election_sealing.RoundKeys.derive(b"k" * 32, election_id, 1, 2)
    honest = election_sealing.seal(election_id, 1, keys.public, (1, 0), 1)
    for points in (1, 3):
        copy = bytearray(honest.ciphertext)
        for i in range(0, 65 * points, 65):
            copy[i] = 6 + (copy[i + 64] & 1)
        assert election_sealing.receipt(bytes(copy)) != honest.receipt
        assert not election_sealing.verify_ballot(election_id, 1, keys.public, 1, bytes(copy), honest.proof)
    assert election_sealing.verify_ballot(election_id, 1, keys.public, 1, honest.ciphertext, honest.proof)
    # and a count refuses the same R twice in a round: a byte copy, whose receipt is the same
    with pytest.raises(election_sealing.ElectionSealingError, match="same R"):
        election_sealing.add_up([honest.ciphertext, honest.ciphertext], 2)
