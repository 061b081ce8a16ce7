"""An outsider's re-count of a published election, from the published data alone.

Independent of the service's code on purpose (it imports nothing from `services`): what an observer would write
from docs/anonymity.md's description of the published record. Given the election record (GET /elections/{id}) and
each counted round's ballot set (GET /elections/{id}/rounds/{n}/ballots), it checks that

- every ballot's receipt is SHA-256 of its ciphertext, and the set's digest is the one the count published;
- every ballot proves it is 0 or 1 per candidate and approves at most the round's seats (disjunctive
  Chaum-Pedersen proofs), so no ballot carries more than one vote per candidate;
- the published sum is the sum of the published ciphertexts, and each candidate's decryption proof holds, which
  gives the tally without the key;
- the quorum, the majority and the tie rules applied to that tally give the published outcome.

`python -m tests.support.election_audit record.json ballots-1.json ...` prints the re-computed outcome.
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


def one_of(ctx: bytes, key: PublicKey, r: PublicKey, c: PublicKey, proof: bytes, allowed: list[int]) -> bool:
    size = 2 * P65 + 2 * S32
    if len(proof) != size * len(allowed):
        return False
    total, seen = 0, []
    for i, v in enumerate(allowed):
        part = proof[i * size : (i + 1) * size]
        a, b = PublicKey(part[:P65]), PublicKey(part[P65 : 2 * P65])
        ci, si = int.from_bytes(part[2 * P65 : 2 * P65 + S32], "big"), int.from_bytes(part[2 * P65 + S32 :], "big")
        shifted = c if v == 0 else add(c, base(-v))
        if raw(base(si)) != raw(add(a, mul(r, ci))) or raw(mul(key, si)) != raw(add(b, mul(shifted, ci))):
            return False
        total += ci
        seen += [raw(a), raw(b)]
    return total % N == challenge(ctx, raw(key), raw(r), raw(c), *seen)


def points(data: bytes, count: int) -> list[PublicKey]:
    if len(data) != P65 * count:
        raise AuditError("a ciphertext has the wrong length")
    return [PublicKey(data[i * P65 : (i + 1) * P65]) for i in range(count)]


def small_log(mask: PublicKey, total: PublicKey, bound: int) -> int:
    current = mask
    for m in range(bound + 1):
        if raw(current) == raw(total):
            return m
        current = add(current, G)
    raise AuditError("a count is beyond the turnout")


def recount_round(election_id: str, round_view: dict[str, Any], ballot_set: dict[str, Any]) -> dict[str, int]:
    """The tally of one counted round, every proof checked; raises AuditError on anything that does not hold."""
    from uuid import UUID  # noqa: PLC0415 - the only helper the script needs besides the curve

    number, seats = round_view["round"], round_view["seats"]
    count = round_view["count"]
    ctx = UUID(election_id).bytes + number.to_bytes(4, "big")
    keys = [PublicKey(bytes.fromhex(k)) for k in round_view["public_keys"]]
    if ballot_set["public_keys"] != round_view["public_keys"]:
        raise AuditError("the ballot set names other keys than the record")
    ballots = ballot_set["ballots"]
    if len(ballots) != count["turnout"]:
        raise AuditError(f"{len(ballots)} published ballots for a turnout of {count['turnout']}")
    receipts = []
    for ballot in ballots:
        ciphertext, proof = bytes.fromhex(ballot["ciphertext"]), bytes.fromhex(ballot["proof"])
        if hashlib.sha256(ciphertext).hexdigest() != ballot["receipt"]:
            raise AuditError("a receipt is not the hash of its ciphertext")
        receipts.append(ballot["receipt"])
        r, *cs = points(ciphertext, 1 + len(keys))
        size = 2 * (2 * P65 + 2 * S32)
        for i, (key, c) in enumerate(zip(keys, cs, strict=True)):
            if not one_of(ctx, key, r, c, proof[i * size : (i + 1) * size], [0, 1]):
                raise AuditError(f"ballot {ballot['receipt']} does not prove a 0 or 1 for candidate {i}")
        if not one_of(ctx, add(*keys), r, add(*cs), proof[len(keys) * size :], list(range(seats + 1))):
            raise AuditError(f"ballot {ballot['receipt']} does not prove it approves at most {seats}")
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
        share, a1, a2 = (PublicKey(proof[i * P65 : (i + 1) * P65]) for i in range(3))
        s = int.from_bytes(proof[3 * P65 :], "big")
        c = challenge(ctx, raw(key), raw(r_sum), raw(share), raw(a1), raw(a2))
        if raw(base(s)) != raw(add(a1, mul(key, c))) or raw(mul(r_sum, s)) != raw(add(a2, mul(share, c))):
            raise AuditError(f"the decryption proof of candidate {candidate} does not hold")
        tally[candidate] = small_log(share, c_sum, len(ballots))
    return tally


def outcome(rules: dict[str, Any], round_view: dict[str, Any], tally: dict[str, int]) -> dict[str, list[str]]:
    """The rules applied to a tally: who is elected, who is tied, who goes on to a further round."""
    seats, eligible, turnout = round_view["seats"], round_view["eligible"], round_view["count"]["turnout"]
    if Fraction(turnout) < Fraction(rules["quorum"]) * eligible:
        return {"elected": [], "tied": [], "next": sorted(round_view["candidates"])}
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
    return {"elected": elected, "tied": sorted(tied), "next": sorted(rest)}


def audit(record: dict[str, Any], ballot_sets: dict[int, dict[str, Any]]) -> list[str]:
    """Every counted round re-counted and re-decided; returns the election's elected candidates."""
    elected: list[str] = []
    for round_view in record["rounds"]:
        count = round_view["count"]
        if count is None:
            continue
        if count["quorum_met"]:
            tally = recount_round(record["election_id"], round_view, ballot_sets[round_view["round"]])
            if tally != count["tally"]:
                raise AuditError(f"round {round_view['round']}: published tally {count['tally']}, re-count {tally}")
        else:
            tally = {}
        decided = outcome(record["rules"], round_view, tally)
        if decided["elected"] != list(count["elected"]) or decided["tied"] != sorted(count["tied"]):
            raise AuditError(f"round {round_view['round']}: the rules give {decided}, the count published {count}")
        if decided["next"] != sorted(count["next_candidates"]):
            raise AuditError(f"round {round_view['round']}: the further round is not among who the rules leave")
        elected += decided["elected"]
    return elected


if __name__ == "__main__":
    election = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sets = {}
    for path in sys.argv[2:]:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        sets[data["round"]] = data
    print(json.dumps({"elected": audit(election, sets)}))
