"""An outsider's re-count of a published election, from the published data alone.

Independent of the service's code on purpose (it imports nothing from `services`): what an observer would write
from docs/anonymity.md's description of the published record. Given the election record (GET /elections/{id}) and
each counted round's ballot set (GET /elections/{id}/rounds/{n}/ballots), it checks that

- every point is in its one canonical encoding (0x04, x, y) and every proof scalar is below the group order, so a
  ballot has one set of bytes and one receipt; no two ballots of a round share their R (a copy);
- every ballot's receipt is SHA-256 of its ciphertext, and the set's digest is the one the count published;
- every ballot proves it is 0 or 1 per candidate and approves at most the round's seats (disjunctive
  Chaum-Pedersen proofs), so no ballot carries more than one vote per candidate;
- the published sum is the sum of the published ciphertexts, and each candidate's decryption proof holds, which
  gives the tally without the key;
- the turnout is at most the published electorate, and `quorum_met` is what the quorum rule says of it;
- the first round is for the confirmed candidates and the election's seats, and each further round for exactly the
  candidates and seats the last count left, within `max_rounds`;
- the quorum, the majority and the tie rules applied to that tally give the published outcome, at most the seats
  are filled, and the record's `status` and `elected` are what the rounds give.

`python -m tests.support.election_audit record.json ballots-1.json ...` prints the re-computed outcome, or the
finding on standard error with a non-zero exit status.
"""

from __future__ import annotations

import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from coincurve import PrivateKey, PublicKey
from coincurve.utils import GROUP_ORDER_INT as N

P65, S32 = 65, 32
TAG = b"union.feedback.election.v1"
G = PrivateKey.from_int(1).public_key


class AuditError(Exception):
    pass


def mul(point: PublicKey, k: int) -> PublicKey:
    return point.multiply((k % N).to_bytes(32, "big"))


def base(k: int) -> PublicKey:
    return PrivateKey.from_int(k % N).public_key


def add(*points: PublicKey) -> PublicKey:
    return PublicKey.combine_keys(list(points))


def raw(p: PublicKey) -> bytes:
    return p.format(compressed=False)


def challenge(*parts: bytes) -> int:
    h = hashlib.sha256(TAG)
    for part in parts:
        h.update(len(part).to_bytes(4, "big") + part)
    return int.from_bytes(h.digest(), "big") % N


def point(data: bytes) -> PublicKey:
    """Only 0x04 || x || y: libsecp256k1 also parses other encodings of the same point (hybrid, 0x06/0x07)."""
    if len(data) != P65 or data[0] != 4:
        raise AuditError("a point is not in its canonical encoding (0x04, x, y)")
    try:
        parsed = PublicKey(data)
    except ValueError as exc:
        raise AuditError("a point is not on the curve") from exc
    if raw(parsed) != data:
        raise AuditError("a point is not in its canonical encoding (0x04, x, y)")
    return parsed


def scalar(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    if value >= N:
        raise AuditError("a proof's scalar is at or above the group order (a second encoding of a smaller one)")
    return value


def one_of(ctx: bytes, key: PublicKey, r: PublicKey, c: PublicKey, proof: bytes, allowed: list[int]) -> bool:
    size = 2 * P65 + 2 * S32
    if len(proof) != size * len(allowed):
        return False
    total, seen = 0, []
    for i, v in enumerate(allowed):
        part = proof[i * size : (i + 1) * size]
        a, b = point(part[:P65]), point(part[P65 : 2 * P65])
        ci, si = scalar(part[2 * P65 : 2 * P65 + S32]), scalar(part[2 * P65 + S32 :])
        shifted = c if v == 0 else add(c, base(-v))
        if raw(base(si)) != raw(add(a, mul(r, ci))) or raw(mul(key, si)) != raw(add(b, mul(shifted, ci))):
            return False
        total += ci
        seen += [raw(a), raw(b)]
    return total % N == challenge(ctx, raw(key), raw(r), raw(c), *seen)


def points(data: bytes, count: int) -> list[PublicKey]:
    if len(data) != P65 * count:
        raise AuditError("a ciphertext has the wrong length")
    return [point(data[i * P65 : (i + 1) * P65]) for i in range(count)]


def small_log(mask: PublicKey, total: PublicKey, bound: int) -> int:
    current = mask
    for m in range(bound + 1):
        if raw(current) == raw(total):
            return m
        current = add(current, G)
    raise AuditError("a count is beyond the turnout")


def check_ballot(ctx: bytes, keys: list[PublicKey], seats: int, ballot: dict[str, Any], seen: set[bytes]) -> None:
    """One published ballot: its receipt, its encodings, an R not seen before in its round, and its proofs."""
    ciphertext, proof = bytes.fromhex(ballot["ciphertext"]), bytes.fromhex(ballot["proof"])
    if hashlib.sha256(ciphertext).hexdigest() != ballot["receipt"]:
        raise AuditError("a receipt is not the hash of its ciphertext")
    r, *cs = points(ciphertext, 1 + len(keys))
    if raw(r) in seen:
        raise AuditError(f"the same R twice in a round (a copy of a ballot), in {ballot['receipt']}")
    seen.add(raw(r))
    size = 2 * (2 * P65 + 2 * S32)
    for i, (key, c) in enumerate(zip(keys, cs, strict=True)):
        if not one_of(ctx, key, r, c, proof[i * size : (i + 1) * size], [0, 1]):
            raise AuditError(f"ballot {ballot['receipt']} does not prove a 0 or 1 for candidate {i}")
    if not one_of(ctx, add(*keys), r, add(*cs), proof[len(keys) * size :], list(range(seats + 1))):
        raise AuditError(f"ballot {ballot['receipt']} does not prove it approves at most {seats}")


def recount_round(election_id: str, round_view: dict[str, Any], ballot_set: dict[str, Any]) -> dict[str, int]:
    """The tally of one counted round, every proof checked; raises AuditError on anything that does not hold."""
    from uuid import UUID  # noqa: PLC0415 - the only helper the script needs besides the curve

    number, seats = round_view["round"], round_view["seats"]
    count = round_view["count"]
    ctx = UUID(election_id).bytes + number.to_bytes(4, "big")
    keys = [point(bytes.fromhex(k)) for k in round_view["public_keys"]]
    if ballot_set["public_keys"] != round_view["public_keys"]:
        raise AuditError("the ballot set names other keys than the record")
    ballots = ballot_set["ballots"]
    if len(ballots) != count["turnout"]:
        raise AuditError(f"{len(ballots)} published ballots for a turnout of {count['turnout']}")
    randomness: set[bytes] = set()
    for ballot in ballots:
        check_ballot(ctx, keys, seats, ballot, randomness)
    receipts = [b["receipt"] for b in ballots]
    if hashlib.sha256("".join(f"{x}\n" for x in sorted(receipts)).encode()).hexdigest() != count["ballots_digest"]:
        raise AuditError("the ballot set is not the one the count published")
    columns = [points(bytes.fromhex(b["ciphertext"]), 1 + len(keys)) for b in ballots]
    summed = b"".join(raw(add(*(col[i] for col in columns))) for i in range(1 + len(keys))) if columns else b""
    if summed.hex() != count["summed"]:
        raise AuditError("the published sum is not the sum of the published ballots")
    tally: dict[str, int] = {}
    if not columns:
        return dict.fromkeys(round_view["candidates"], 0)
    r_sum, *c_sums = points(summed, 1 + len(keys))
    for candidate, key, c_sum, proof_hex in zip(
        round_view["candidates"], keys, c_sums, count["decryption_proofs"], strict=True
    ):
        proof = bytes.fromhex(proof_hex)
        if len(proof) != 3 * P65 + S32:
            raise AuditError(f"the decryption proof of candidate {candidate} has the wrong length")
        share, a1, a2 = (point(proof[i * P65 : (i + 1) * P65]) for i in range(3))
        s = scalar(proof[3 * P65 :])
        c = challenge(ctx, raw(key), raw(r_sum), raw(share), raw(a1), raw(a2))
        if raw(base(s)) != raw(add(a1, mul(key, c))) or raw(mul(r_sum, s)) != raw(add(a2, mul(share, c))):
            raise AuditError(f"the decryption proof of candidate {candidate} does not hold")
        tally[candidate] = small_log(share, c_sum, len(ballots))
    return tally


def quorum_met(rules: dict[str, Any], eligible: int, turnout: int) -> bool:
    return Fraction(turnout) >= Fraction(rules["quorum"]) * eligible


def outcome(rules: dict[str, Any], round_view: dict[str, Any], tally: dict[str, int]) -> dict[str, Any]:
    """The rules applied to a tally: who is elected, who is tied, who goes on to a further round for how many seats."""
    seats, eligible, turnout = round_view["seats"], round_view["eligible"], round_view["count"]["turnout"]
    if not quorum_met(rules, eligible, turnout):
        return {"elected": [], "tied": [], "next": sorted(round_view["candidates"]), "next_seats": seats}
    base_votes = eligible if rules["majority_base"] == "entitled" else turnout
    passing = [c for c in round_view["candidates"] if 2 * tally[c] > base_votes]
    passing.sort(key=lambda c: (-tally[c], c))
    if len(passing) <= seats:
        elected, tied = passing, []
    else:
        last = tally[passing[seats - 1]]
        above = [c for c in passing if tally[c] > last]
        level = [c for c in passing if tally[c] == last]
        elected, tied = (above + level, []) if len(above) + len(level) <= seats else (above, level)
    rest = tied or ([c for c in round_view["candidates"] if c not in elected] if len(elected) < seats else [])
    return {
        "elected": elected,
        "tied": sorted(tied),
        "next": sorted(rest),
        "next_seats": seats - len(elected) if rest else 0,
    }


def check_round_opened(record: dict[str, Any], round_view: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """A round is for what the election or the last count left: its candidates, its seats, the same electorate."""
    number = round_view["round"]
    if number > record["rules"]["max_rounds"]:
        raise AuditError(f"round {number}: beyond the election's max_rounds ({record['rules']['max_rounds']})")
    if round_view["eligible"] != len(record["electorate_member_nos"]):
        raise AuditError(
            f"round {number}: {round_view['eligible']} entitled, the published electorate has "
            f"{len(record['electorate_member_nos'])}"
        )
    if previous is None:
        candidates, seats = list(record["confirmed_candidates"]), record["seats"]
    elif previous["count"] is None:
        raise AuditError(f"round {number} was opened before round {previous['round']} was counted")
    else:
        candidates, seats = list(previous["count"]["next_candidates"]), previous["count"]["next_seats"]
    if sorted(round_view["candidates"]) != sorted(candidates) or len(set(candidates)) != len(candidates):
        raise AuditError(
            f"round {number}: its candidates {round_view['candidates']} are not the ones left, {candidates}"
        )
    if round_view["seats"] != seats or seats < 1:
        raise AuditError(f"round {number}: {round_view['seats']} seats, but {seats} were left to fill")


def check_count(record: dict[str, Any], round_view: dict[str, Any], tally: dict[str, int]) -> dict[str, Any]:
    number, count = round_view["round"], round_view["count"]
    decided = outcome(record["rules"], round_view, tally)
    if decided["elected"] != list(count["elected"]) or decided["tied"] != sorted(count["tied"]):
        raise AuditError(f"round {number}: the rules give {decided}, the count published {count}")
    if decided["next"] != sorted(count["next_candidates"]) or decided["next_seats"] != count["next_seats"]:
        raise AuditError(f"round {number}: the further round is not among who the rules leave, for the seats left")
    return decided


def expected_status(record: dict[str, Any], elected: list[str]) -> str:
    rounds = record["rounds"]
    if not rounds:
        return record["status"] if record["status"] in ("nominating", "confirmed") else "confirmed"
    last = rounds[-1]
    if last["count"] is None:
        return "voting"
    if last["count"]["next_seats"] == 0:
        return "concluded"
    if last["round"] >= record["rules"]["max_rounds"]:
        return "concluded" if elected else "failed"
    return "between_rounds"


def audit(record: dict[str, Any], ballot_sets: dict[int, dict[str, Any]]) -> list[str]:
    """Every counted round re-counted and re-decided; returns the election's elected candidates. Anything that does
    not hold is an AuditError, a malformed record included."""
    try:
        return _audit(record, ballot_sets)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise AuditError(f"the record is malformed: {exc!r}") from exc


def checked_tally(
    record: dict[str, Any], round_view: dict[str, Any], ballot_sets: dict[int, dict[str, Any]]
) -> dict[str, int]:
    """A counted round's tally, re-counted from its ballots; its turnout and quorum checked against the electorate."""
    number, count = round_view["round"], round_view["count"]
    if count["eligible"] != round_view["eligible"]:
        raise AuditError(
            f"round {number}: counted for {count['eligible']} entitled, opened for {round_view['eligible']}"
        )
    if count["turnout"] > round_view["eligible"]:
        raise AuditError(f"round {number}: a turnout of {count['turnout']} above the {round_view['eligible']} entitled")
    if count["quorum_met"] != quorum_met(record["rules"], round_view["eligible"], count["turnout"]):
        raise AuditError(
            f"round {number}: quorum_met is {count['quorum_met']} for a turnout of {count['turnout']} "
            f"of {round_view['eligible']} entitled (quorum {record['rules']['quorum']})"
        )
    if not count["quorum_met"]:
        if count["tally"] or ballot_sets.get(number, {}).get("ballots"):
            raise AuditError(f"round {number}: below the quorum, yet a tally or ballots were published")
        return {}
    tally = recount_round(record["election_id"], round_view, ballot_sets[number])
    if tally != count["tally"]:
        raise AuditError(f"round {number}: published tally {count['tally']}, re-count {tally}")
    return tally


def _audit(record: dict[str, Any], ballot_sets: dict[int, dict[str, Any]]) -> list[str]:
    elected: list[str] = []
    previous: dict[str, Any] | None = None
    for position, round_view in enumerate(record["rounds"], start=1):
        if round_view["round"] != position:
            raise AuditError(f"round {round_view['round']} is listed as round {position}")
        check_round_opened(record, round_view, previous)
        previous = round_view
        count = round_view["count"]
        if count is None:
            continue
        tally = checked_tally(record, round_view, ballot_sets)
        decided = check_count(record, round_view, tally)
        elected += decided["elected"]
        if len(elected) > record["seats"] or len(set(elected)) != len(elected):
            raise AuditError(f"{len(elected)} elected to {record['seats']} seats: {elected}")
    status = expected_status(record, elected)
    if record["status"] != status:
        raise AuditError(f"the record's status is {record['status']}, the rounds give {status}")
    if list(record["elected"]) != (elected if status == "concluded" else []):
        raise AuditError(f"the record's elected are {record['elected']}, the rounds elected {elected}")
    return elected


def main(argv: list[str]) -> int:
    election = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sets = {}
    for path in argv[1:]:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        sets[data["round"]] = data
    try:
        elected = audit(election, sets)
    except AuditError as finding:
        print(f"audit failed: {finding}", file=sys.stderr)
        return 1
    print(json.dumps({"elected": elected}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
