"""The outsider's audit against records an insider forged (issue 30, findings 1-4 and 7).

An insider holds the key and can write the database: they publish whatever record they like, every field as
consistent as they can make it. `publish` plays them, running the election through the service's own deciders and
sealing; each test bends one thing, and the audit (which imports nothing from the service) must flag it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from coincurve.utils import GROUP_ORDER_INT as N

from services.feedback import election_box, election_sealing, elections
from services.feedback.election_handlers import election_view
from services.feedback.elections import Assembly, Body, Rules
from services.feedback.events import ElectionConcluded, ElectionRoundCounted, ElectionRoundOpened
from shared.errors import DomainError
from shared.events import DomainEvent
from tests.support.election_audit import AuditError, audit

MASTER = b"m" * 32
NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)
Ballots = list[tuple[bytes, bytes]]  # (ciphertext, proof)
# the election, the round, its candidates, its public keys, its seats -> the ballots the box holds
Votes = Callable[[uuid.UUID, int, tuple[uuid.UUID, ...], list[bytes], int], Ballots]


def hybrid(ciphertext: bytes) -> bytes:
    """The same points in libsecp256k1's "hybrid" encoding (0x06/0x07 and x, y): other bytes, the same ballot."""
    out = b""
    for i in range(0, len(ciphertext), 65):
        point = ciphertext[i : i + 65]
        out += bytes([6 + (point[64] & 1)]) + point[1:]
    return out


def lenient_sum(ciphertexts: list[bytes], k: int) -> bytes:
    """The sum as an insider computes it: any encoding libsecp256k1 parses."""
    columns = [[PublicKey(c[i * 65 : (i + 1) * 65]) for i in range(1 + k)] for c in ciphertexts]
    return b"".join(PublicKey.combine_keys([col[i] for col in columns]).format(compressed=False) for i in range(1 + k))


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def publish(
    votes: Votes,
    *,
    seats: int = 2,
    candidates: int = 3,
    eligible: int = 9,
    body: Body = Body.COMMITTEE,
    rules: Rules | None = None,
    bend: Callable[[ElectionRoundOpened, elections.Election], ElectionRoundOpened] = lambda e, _: e,
    counted: Callable[[ElectionRoundCounted], ElectionRoundCounted] = lambda e: e,
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], uuid.UUID, list[uuid.UUID]]:
    """Run an election as the record's author would, with the box holding `votes`; `bend` may change a round as
    it is opened, `counted` a count as it is recorded. Returns the record, the ballot sets, the id, the candidates."""
    election_id = uuid.uuid4()
    nominees = [uuid.UUID(int=1000 + i) for i in range(candidates)]
    voters = [(uuid.UUID(int=i + 1), f"M{i + 1:04d}") for i in range(eligible)]
    events: list[DomainEvent] = elections.call_election(
        elections.CallElection(
            election_id,
            uuid.uuid4(),
            "第五届工会委员会",
            body,
            Assembly.MEMBERS,
            seats,
            rules or Rules.default_for(body),
        ),
        org_known=True,
    )
    state = elections.fold(events)
    for c in nominees:
        state = elections.evolve(state, elections.nominate(state, election_id, c, f"NO-{c.int}")[0])
    state = elections.evolve(state, elections.confirm_candidates(state, election_id)[0])
    sets: dict[int, dict[str, Any]] = {}
    assert state is not None
    while state.status in (elections.Status.CONFIRMED, elections.Status.BETWEEN_ROUNDS):
        number = len(state.rounds) + 1
        k = len(state.candidates if state.status is elections.Status.CONFIRMED else state.next_candidates)
        [opened] = elections.open_round(
            state,
            election_id,
            NOW,
            NOW,
            NOW + timedelta(hours=1),
            electorate=voters,
            public_keys=["00"] * k,
        )
        assert isinstance(opened, ElectionRoundOpened)
        opened = bend(opened, state)
        keys = election_sealing.RoundKeys.derive(MASTER, election_id, number, len(opened.candidates))
        opened = opened.model_copy(update={"public_keys": tuple(p.hex() for p in keys.public)})
        state = elections.evolve(state, opened)
        assert state is not None
        assert state.current is not None
        box = votes(election_id, number, state.current.candidates, list(keys.public), state.current.seats)
        turnout = len(box)
        published = sorted((election_sealing.receipt(c), c, p) for c, p in box)
        if elections.quorum_met(state.rules, state.current.eligible, turnout):
            summed = lenient_sum([c for c, _ in box], len(keys.secrets)) if box else b""
            counts, proofs = (
                election_sealing.decrypt_with_proof(election_id, number, keys, summed, turnout)
                if box
                else ([0] * len(keys.secrets), [])
            )
            tally: dict[uuid.UUID, int] | None = dict(zip(state.current.candidates, counts, strict=True))
            extra = {
                "ballots_digest": election_box.digest([r for r, _, _ in published]),
                "summed": summed.hex(),
                "decryption_proofs": [p.to_hex() for p in proofs],
            }
        else:
            tally, extra, published = None, {}, []
        closed = _close(state, turnout, tally, extra)
        closed = [counted(e) if isinstance(e, ElectionRoundCounted) else e for e in closed]
        for event in closed:
            state = elections.evolve(state, event)
        assert state is not None
        sets[number] = jsonable(
            {
                "election_id": election_id,
                "round": number,
                "seats": opened.seats,
                "candidates": opened.candidates,
                "public_keys": opened.public_keys,
                "counted": True,
                "ballots": [{"receipt": r, "ciphertext": c.hex(), "proof": p.hex()} for r, c, p in published],
            }
        )
    return jsonable(election_view(state)), sets, election_id, nominees


def _close(
    state: elections.Election, turnout: int, tally: dict[uuid.UUID, int] | None, extra: dict[str, Any]
) -> list[DomainEvent]:
    """The decider's close, or, where it now refuses, the events an insider would append by hand."""
    try:
        return elections.close_round(state, state.election_id, turnout=turnout, tally=tally, **extra)
    except DomainError:  # the insider writes the events themselves
        current = state.current
        assert current is not None
        assert tally is not None
        outcome = elections.count_round(
            state.rules, current.seats, current.candidates, tally, current.eligible, turnout
        )
        return [
            ElectionRoundCounted(
                election_id=state.election_id,
                round=current.number,
                eligible=current.eligible,
                turnout=turnout,
                quorum_met=True,
                tally={str(c): tally[c] for c in current.candidates},
                elected=outcome.elected,
                tied=outcome.tied,
                next_candidates=outcome.next_candidates,
                next_seats=outcome.next_seats,
                **extra,
            ),
            ElectionConcluded(
                election_id=state.election_id,
                org_id=state.org_id,
                body=state.body,
                seats=state.seats,
                elected=state.elected + outcome.elected,
                rounds=current.number,
            ),
        ]


def sealed(*rounds: list[list[int]]) -> Votes:
    """Honest ballots: round n's voters approve `rounds[n - 1]` (0/1 per nominee, in nomination order; a candidate
    who was never nominated has no column and gets no votes)."""

    def votes(
        election_id: uuid.UUID, number: int, candidates: tuple[uuid.UUID, ...], keys: list[bytes], seats: int
    ) -> Ballots:
        ballots = []
        for vector in rounds[min(number, len(rounds)) - 1]:
            chosen = [vector[c.int - 1000] if c.int - 1000 < len(vector) else 0 for c in candidates]
            s = election_sealing.seal(election_id, number, keys, chosen, seats)
            ballots.append((s.ciphertext, s.proof))
        return ballots

    return votes


# a 3 / b 4 / c 5 among 9 entitled, 7 voting, 2 seats: c elected (5 > 9/2), a and b to a further round for one seat,
# where b gets 5 of 7
HONEST = [[1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]]
ROUND_2 = [[0, 1, 0]] * 5 + [[1, 0, 0]] * 2


def test_an_honest_record_passes_and_gives_its_elected() -> None:
    record, sets, _, [a, b, c] = publish(sealed(HONEST, ROUND_2))
    assert record["rounds"][0]["count"]["tally"] == {str(a): 3, str(b): 4, str(c): 5}
    assert record["status"] == "concluded"
    assert audit(record, sets) == record["elected"] == [str(c), str(b)]


def test_finding_1_a_ballot_copied_under_a_hybrid_encoding_is_flagged() -> None:
    def copied(
        election_id: uuid.UUID, number: int, candidates: tuple[uuid.UUID, ...], keys: list[bytes], seats: int
    ) -> Ballots:
        box = sealed(HONEST, ROUND_2)(election_id, number, candidates, keys, seats)
        if number == 1:  # two abstainers' register rows, and two copies of the first ballot (a and b)
            ciphertext, proof = box[0]
            box += [(hybrid(ciphertext), proof), (hybrid(ciphertext)[:65] + ciphertext[65:], proof)]
        return box

    record, sets, _, [a, b, c] = publish(copied)
    assert record["rounds"][0]["count"]["tally"] == {str(a): 5, str(b): 6, str(c): 5}  # the 5/6/5
    with pytest.raises(AuditError, match="canonical"):
        audit(record, sets)


def test_finding_1_the_same_r_twice_in_a_round_is_flagged() -> None:
    def twice(
        election_id: uuid.UUID, number: int, candidates: tuple[uuid.UUID, ...], keys: list[bytes], seats: int
    ) -> Ballots:
        box = sealed(HONEST, ROUND_2)(election_id, number, candidates, keys, seats)
        ciphertext, proof = box[0]
        return [*box, (ciphertext, proof)] if number == 1 else box  # receipts equal: a set no longer tells

    record, sets, _, _ = publish(twice)
    with pytest.raises(AuditError, match="same R"):
        audit(record, sets)


def test_finding_2_a_turnout_above_the_electorate_is_flagged() -> None:
    extra = [[1, 0, 0], [1, 0, 0]]
    record, sets, _, _ = publish(sealed([[1, 0, 0], [1, 0, 0], [0, 1, 0], *extra]), seats=1, eligible=3)
    assert record["rounds"][0]["count"]["turnout"] == 5
    assert record["rounds"][0]["eligible"] == 3
    with pytest.raises(AuditError, match="turnout"):
        audit(record, sets)


def test_finding_3_more_elected_than_seats_is_flagged() -> None:
    # a 2-seat committee whose first round was opened for 3 seats: all three elected
    def three_seats(opened: ElectionRoundOpened, _: elections.Election) -> ElectionRoundOpened:
        return opened.model_copy(update={"seats": 3})

    record, sets, _, _ = publish(sealed([[1, 1, 1]] * 7), bend=three_seats)
    assert len(record["elected"]) == 3
    with pytest.raises(AuditError, match="seats"):
        audit(record, sets)


def test_finding_3_a_further_round_with_other_seats_is_flagged() -> None:
    def two_seats(opened: ElectionRoundOpened, _: elections.Election) -> ElectionRoundOpened:
        return opened.model_copy(update={"seats": 2}) if opened.round == 2 else opened

    record, sets, _, [a, b, c] = publish(sealed(HONEST + [[1, 1, 0]] * 2, [[1, 0, 1]] * 9), bend=two_seats)
    assert record["rounds"][1]["seats"] == 2
    assert sorted(record["elected"]) == sorted(map(str, (a, b, c)))  # three on a 2-seat committee
    with pytest.raises(AuditError, match="seats"):
        audit(record, sets)


def test_finding_3_a_stranger_in_round_2_is_flagged() -> None:
    stranger = uuid.UUID(int=1003)  # never nominated, and elected in round 2 in a's place

    def swapped(opened: ElectionRoundOpened, _: elections.Election) -> ElectionRoundOpened:
        if opened.round != 2:
            return opened
        return opened.model_copy(update={"candidates": (opened.candidates[1], stranger)})

    record, sets, _, [a, _b, c] = publish(sealed(HONEST, [[0, 0, 0, 1]] * 5 + [[0, 1, 0, 0]] * 2), bend=swapped)
    assert str(a) not in record["rounds"][1]["candidates"]
    assert record["elected"] == [str(c), str(stranger)]
    with pytest.raises(AuditError, match="candidates"):
        audit(record, sets)


def test_finding_3_a_swapped_elected_or_status_is_flagged() -> None:
    record, sets, _, [a, _b, c] = publish(sealed(HONEST, ROUND_2))
    swapped = {**record, "elected": [str(c), str(a)]}
    with pytest.raises(AuditError, match="elected"):
        audit(swapped, sets)
    failed = {**record, "status": "failed", "elected": []}
    with pytest.raises(AuditError, match="status"):
        audit(failed, sets)


def test_finding_4_a_quorum_that_contradicts_the_turnout_is_a_finding_not_a_crash() -> None:
    def void(event: ElectionRoundCounted) -> ElectionRoundCounted:
        return event.model_copy(update={"quorum_met": False})

    record, sets, _, _ = publish(sealed(HONEST, ROUND_2), counted=void, rules=Rules(max_rounds=1))
    assert record["rounds"][0]["count"]["quorum_met"] is False  # 7 of 9 voted: two thirds is 6
    with pytest.raises(AuditError, match="quorum"):
        audit(record, sets)


def _small_scalars(monkeypatch: pytest.MonkeyPatch | Any) -> None:
    """Every scalar the prover picks is 7: the fake branches' c and s fit in 32 bytes with N added."""
    monkeypatch.setattr(election_sealing, "_random_scalar", lambda: 7)


def test_finding_7_a_proof_scalar_at_or_above_the_group_order_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _small_scalars(monkeypatch)
    election_id = uuid.uuid4()
    keys = election_sealing.RoundKeys.derive(MASTER, election_id, 1, 2)
    ballot = election_sealing.seal(election_id, 1, keys.public, (1, 0), 1)
    assert election_sealing.verify_ballot(election_id, 1, keys.public, 1, ballot.ciphertext, ballot.proof)
    # the first candidate's proof: branch 0 (m = 0) is the simulated one, its c is 7; c + N gives the same check
    branch = 2 * 65 + 2 * 32
    c_at = 2 * 65
    c = int.from_bytes(ballot.proof[c_at : c_at + 32], "big")
    assert c == 7
    large = ballot.proof[:c_at] + (c + N).to_bytes(32, "big") + ballot.proof[c_at + 32 :]
    assert large[:branch] != ballot.proof[:branch]
    assert not election_sealing.verify_ballot(election_id, 1, keys.public, 1, ballot.ciphertext, large)
    s_at = 2 * 65 + 32
    s_large = ballot.proof[:s_at] + (7 + N).to_bytes(32, "big") + ballot.proof[s_at + 32 :]
    assert not election_sealing.verify_ballot(election_id, 1, keys.public, 1, ballot.ciphertext, s_large)


def test_finding_7_the_audit_flags_a_large_scalar(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_small(
        election_id: uuid.UUID, number: int, candidates: tuple[uuid.UUID, ...], keys: list[bytes], seats: int
    ) -> Ballots:
        box = sealed(HONEST, ROUND_2)(election_id, number, candidates, keys, seats)
        with monkeypatch.context() as patched:
            _small_scalars(patched)
            approve_a = election_sealing.seal(election_id, number, keys, [1] + [0] * (len(keys) - 1), seats)
        return [*box[1:], (approve_a.ciphertext, approve_a.proof)]

    record, sets, _, _ = publish(one_small)
    assert audit(record, sets)
    c_at, seven = 2 * 65, (7).to_bytes(32, "big")
    [ballot] = [b for b in sets[1]["ballots"] if bytes.fromhex(b["proof"])[c_at : c_at + 32] == seven]
    proof = bytes.fromhex(ballot["proof"])
    ballot["proof"] = (proof[:c_at] + (7 + N).to_bytes(32, "big") + proof[c_at + 32 :]).hex()
    with pytest.raises(AuditError, match="scalar"):
        audit(record, sets)


def test_the_command_line_exits_non_zero_with_the_finding(tmp_path: Path) -> None:
    record, sets, _, [a, _b, c] = publish(sealed(HONEST, ROUND_2))
    (tmp_path / "record.json").write_text(json.dumps(record))
    (tmp_path / "ballots-1.json").write_text(json.dumps(sets[1]))
    (tmp_path / "ballots-2.json").write_text(json.dumps(sets[2]))
    command = [sys.executable, "-m", "tests.support.election_audit", str(tmp_path / "record.json")]
    command += [str(tmp_path / "ballots-1.json"), str(tmp_path / "ballots-2.json")]
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"elected": record["elected"]}
    (tmp_path / "record.json").write_text(json.dumps({**record, "elected": [str(c), str(a)]}))
    flagged = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    assert flagged.returncode != 0
    assert "elected" in flagged.stderr
