"""Election ballots: sealed, provably well formed, and counted in a way anyone can check without the key.

A ballot approves up to `seats` of a round's k candidates. It is k exponential ElGamal counters on secp256k1
(libsecp256k1, through coincurve), one per candidate under that candidate's key P_i = x_i·G, sharing one random
point: R = r·G, C_i = r·P_i + m_i·G with m_i in {0, 1}. Ciphertexts add up point by point.

Every ballot carries non-interactive zero-knowledge proofs (disjunctive Chaum-Pedersen, Fiat-Shamir with SHA-256):
each m_i is 0 or 1, and the sum of the m_i (a ciphertext under the sum of the keys) is at most `seats`. So a
published ballot can be checked to be a valid ballot without learning anything about it.

The count publishes, per candidate, the decryption D_i = x_i·R_sum of the summed ciphertext and a Chaum-Pedersen
proof that log_G(P_i) = log_{R_sum}(D_i); the count m is then the small number with C_sum_i = D_i + m·G, which
anyone finds by stepping G. Nothing here needs the private keys except `decrypt_with_proof`.

A voter's receipt is SHA-256 of their ballot's ciphertext: it names the ballot in the published set and says
nothing about it (fresh randomness; the voter never learns r, so the receipt does not let them prove their vote).

Encodings are canonical, so that one ballot has one receipt (issue 30): a point is its 65-byte uncompressed form
(0x04, x, y) and nothing else libsecp256k1 would parse (its "hybrid" 0x06/0x07 form carries the same point, and the
proofs hash the 0x04 form, so a re-encoded copy would check out under another receipt); a scalar in a proof is below
the group order N (c + N passes the same equations). A round's ballots have distinct R: the same R twice is a copy.

tests/support/election_audit.py checks all of this again with its own code, from the published data alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from coincurve import PrivateKey, PublicKey
from coincurve.utils import GROUP_ORDER_INT as N
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

POINT = 65  # uncompressed
SCALAR = 32
BRANCH = 2 * POINT + 2 * SCALAR  # a, b, c, s of one disjunct
_SALT = b"union.feedback.election-keys.v1"
_TAG = b"union.feedback.election.v1"
_G = PrivateKey.from_int(1).public_key


class ElectionSealingError(Exception):
    """A ballot or a count that does not check out: wrong length, a failed proof, or keys that do not match."""


def _mul(point: PublicKey, k: int) -> PublicKey:
    return point.multiply((k % N).to_bytes(SCALAR, "big"))


def _base(k: int) -> PublicKey:
    return PrivateKey.from_int(k % N).public_key


def _add(*points: PublicKey) -> PublicKey:
    return PublicKey.combine_keys(list(points))


def _raw(point: PublicKey) -> bytes:
    return point.format(compressed=False)


def _challenge(*parts: bytes) -> int:
    digest = hashlib.sha256(_TAG)
    for part in parts:
        digest.update(len(part).to_bytes(4, "big") + part)
    return int.from_bytes(digest.digest(), "big") % N


def _random_scalar() -> int:
    return int.from_bytes(PrivateKey().secret, "big")


def receipt(ciphertext: bytes) -> str:
    return hashlib.sha256(ciphertext).hexdigest()


@dataclass(frozen=True)
class RoundKeys:
    """A round's private keys, one per candidate: derived from BALLOT_MASTER_KEY when needed, never stored."""

    secrets: tuple[int, ...]

    @classmethod
    def derive(cls, master_key: bytes, election_id: UUID, round_no: int, candidates: int) -> RoundKeys:
        info = election_id.bytes + round_no.to_bytes(4, "big")
        okm = HKDF(SHA256(), 64 * candidates, _SALT, info).derive(master_key)
        return cls(tuple(int.from_bytes(okm[i * 64 : (i + 1) * 64], "big") % (N - 1) + 1 for i in range(candidates)))

    def __repr__(self) -> str:
        return "RoundKeys(<secret>)"

    @property
    def public(self) -> tuple[bytes, ...]:
        return tuple(_raw(_base(x)) for x in self.secrets)


def _point(data: bytes) -> PublicKey:
    """A point in its one canonical encoding, 0x04 || x || y; anything else is refused, whatever libsecp256k1 parses."""
    if len(data) != POINT or data[0] != 0x04:
        raise ElectionSealingError("not a canonical point encoding")
    try:
        point = PublicKey(data)
    except ValueError as exc:
        raise ElectionSealingError("not a curve point") from exc
    if _raw(point) != data:
        raise ElectionSealingError("not a canonical point encoding")
    return point


def _scalar(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    if len(data) != SCALAR or value >= N:
        raise ElectionSealingError("a scalar at or above the group order")
    return value


def _points(data: bytes, count: int) -> list[PublicKey]:
    if len(data) != POINT * count:
        raise ElectionSealingError("wrong length")
    return [_point(data[i * POINT : (i + 1) * POINT]) for i in range(count)]


# --- disjunctive Chaum-Pedersen: (R, C) under P encrypts one of `allowed` ---


def _prove_one_of(
    context: bytes, key: PublicKey, r_point: PublicKey, c_point: PublicKey, r: int, m: int, allowed: Sequence[int]
) -> bytes:
    real = allowed.index(m)
    branches: list[tuple[PublicKey, PublicKey, int, int]] = []
    w = _random_scalar()
    for i, v in enumerate(allowed):
        if i == real:
            branches.append((_base(w), _mul(key, w), 0, 0))
            continue
        c_i, s_i = _random_scalar(), _random_scalar()
        shifted = c_point if v == 0 else _add(c_point, _base(-v))
        a = _add(_base(s_i), _mul(r_point, -c_i))
        b = _add(_mul(key, s_i), _mul(shifted, -c_i))
        branches.append((a, b, c_i, s_i))
    c = _challenge(context, _raw(key), _raw(r_point), _raw(c_point), *(_raw(p) for br in branches for p in br[:2]))
    c_real = (c - sum(br[2] for i, br in enumerate(branches) if i != real)) % N
    a, b, _, _ = branches[real]
    branches[real] = (a, b, c_real, (w + c_real * r) % N)
    return b"".join(
        _raw(a) + _raw(b) + c_i.to_bytes(SCALAR, "big") + s_i.to_bytes(SCALAR, "big") for a, b, c_i, s_i in branches
    )


def _verify_one_of(
    context: bytes, key: PublicKey, r_point: PublicKey, c_point: PublicKey, proof: bytes, allowed: Sequence[int]
) -> bool:
    if len(proof) != BRANCH * len(allowed):
        return False
    total = 0
    raws: list[bytes] = []
    try:
        for i, v in enumerate(allowed):
            part = proof[i * BRANCH : (i + 1) * BRANCH]
            a, b = _point(part[:POINT]), _point(part[POINT : 2 * POINT])
            c_i, s_i = _scalar(part[2 * POINT : 2 * POINT + SCALAR]), _scalar(part[2 * POINT + SCALAR :])
            shifted = c_point if v == 0 else _add(c_point, _base(-v))
            if _raw(_base(s_i)) != _raw(_add(a, _mul(r_point, c_i))):
                return False
            if _raw(_mul(key, s_i)) != _raw(_add(b, _mul(shifted, c_i))):
                return False
            total += c_i
            raws += [_raw(a), _raw(b)]
    except (ValueError, ElectionSealingError):  # not a canonical point or scalar, a zero scalar, the infinity
        return False
    return total % N == _challenge(context, _raw(key), _raw(r_point), _raw(c_point), *raws)


def _context(election_id: UUID, round_no: int) -> bytes:
    return election_id.bytes + round_no.to_bytes(4, "big")


@dataclass(frozen=True)
class SealedElectionBallot:
    ciphertext: bytes  # R || C_1..C_k
    proof: bytes  # k proofs that m_i is 0 or 1, then one that the sum is at most `seats`

    @property
    def receipt(self) -> str:
        return receipt(self.ciphertext)


def seal(
    election_id: UUID, round_no: int, keys: Sequence[bytes], approvals: Sequence[int], seats: int
) -> SealedElectionBallot:
    """Seal a 0/1 vector of approvals with its proofs; fresh randomness every time."""
    points = [PublicKey(k) for k in keys]
    if len(approvals) != len(points) or any(a not in (0, 1) for a in approvals) or sum(approvals) > seats:
        raise ValueError("a ballot the domain did not check reached the sealing")
    context = _context(election_id, round_no)
    r = _random_scalar()
    r_point = _base(r)
    cs = [_mul(p, r) if m == 0 else _add(_mul(p, r), _G) for p, m in zip(points, approvals, strict=True)]
    proofs = [
        _prove_one_of(context, p, r_point, c, r, m, (0, 1)) for p, c, m in zip(points, cs, approvals, strict=True)
    ]
    proofs.append(_prove_one_of(context, _add(*points), r_point, _add(*cs), r, sum(approvals), tuple(range(seats + 1))))
    return SealedElectionBallot(_raw(r_point) + b"".join(_raw(c) for c in cs), b"".join(proofs))


def verify_ballot(
    election_id: UUID, round_no: int, keys: Sequence[bytes], seats: int, ciphertext: bytes, proof: bytes
) -> bool:
    """The ballot is k counters of 0 or 1 summing to at most `seats`, under these keys (no key needed)."""
    try:
        points = [_point(k) for k in keys]
        r_point, *cs = _points(ciphertext, 1 + len(points))
    except ElectionSealingError:
        return False
    context = _context(election_id, round_no)
    expected = BRANCH * (2 * len(points) + seats + 1)
    if len(proof) != expected:
        return False
    offset = 0
    for p, c in zip(points, cs, strict=True):
        if not _verify_one_of(context, p, r_point, c, proof[offset : offset + 2 * BRANCH], (0, 1)):
            return False
        offset += 2 * BRANCH
    return _verify_one_of(context, _add(*points), r_point, _add(*cs), proof[offset:], tuple(range(seats + 1)))


def add_up(ciphertexts: Iterable[bytes], candidates: int) -> bytes:
    """The point-by-point sum of the ciphertexts (R_sum || C_sum_1..k); empty when there are none. Refuses the same
    R twice: a ballot's R is fresh randomness, so a second one is a copy of a ballot, however its bytes differ."""
    rows = list(ciphertexts)
    if not rows:
        return b""
    columns = [_points(row, 1 + candidates) for row in rows]
    if len({row[:POINT] for row in rows}) != len(rows):
        raise ElectionSealingError("the same R twice in a round: a ballot was copied")
    return b"".join(_raw(_add(*(col[i] for col in columns))) for i in range(1 + candidates))


@dataclass(frozen=True)
class Decryption:
    """Per candidate: D = x·R_sum, and the proof (a1 = wG, a2 = wR_sum, s = w + c·x) that it used the key."""

    share: bytes
    a1: bytes
    a2: bytes
    s: int

    def to_hex(self) -> str:
        return (self.share + self.a1 + self.a2 + self.s.to_bytes(SCALAR, "big")).hex()

    @classmethod
    def from_hex(cls, value: str) -> Decryption:
        raw = bytes.fromhex(value)
        if len(raw) != 3 * POINT + SCALAR:
            raise ElectionSealingError("a decryption proof has the wrong length")
        return cls(raw[:POINT], raw[POINT : 2 * POINT], raw[2 * POINT : 3 * POINT], _scalar(raw[3 * POINT :]))


def _discrete_log(mask: PublicKey, total: PublicKey, bound: int) -> int:
    target = _raw(total)
    current = mask
    for m in range(bound + 1):
        if _raw(current) == target:
            return m
        current = _add(current, _G)
    raise ElectionSealingError("a sum does not open to a count within the turnout")


def decrypt_with_proof(
    election_id: UUID, round_no: int, keys: RoundKeys, summed: bytes, bound: int
) -> tuple[list[int], list[Decryption]]:
    """The counts of the summed ciphertext, each with its proof of correct decryption."""
    k = len(keys.secrets)
    r_sum, *c_sums = _points(summed, 1 + k)
    counts: list[int] = []
    proofs: list[Decryption] = []
    for x, c_sum in zip(keys.secrets, c_sums, strict=True):
        share = _mul(r_sum, x)
        w = _random_scalar()
        a1, a2 = _base(w), _mul(r_sum, w)
        c = _challenge(_context(election_id, round_no), _raw(_base(x)), _raw(r_sum), _raw(share), _raw(a1), _raw(a2))
        proofs.append(Decryption(_raw(share), _raw(a1), _raw(a2), (w + c * x) % N))
        counts.append(_discrete_log(share, c_sum, bound))
    return counts, proofs


def verify_count(
    election_id: UUID, round_no: int, keys: Sequence[bytes], summed: bytes, proofs: Sequence[Decryption], bound: int
) -> list[int]:
    """The counts the proofs vouch for; raises when a proof fails (no key needed)."""
    r_sum, *c_sums = _points(summed, 1 + len(keys))
    counts = []
    for key, c_sum, proof in zip(keys, c_sums, proofs, strict=True):
        p, share, a1, a2 = _point(key), _point(proof.share), _point(proof.a1), _point(proof.a2)
        if not 0 <= proof.s < N:
            raise ElectionSealingError("a scalar at or above the group order")
        c = _challenge(_context(election_id, round_no), key, _raw(r_sum), proof.share, proof.a1, proof.a2)
        if _raw(_base(proof.s)) != _raw(_add(a1, _mul(p, c))) or _raw(_mul(r_sum, proof.s)) != _raw(
            _add(a2, _mul(share, c))
        ):
            raise ElectionSealingError("a decryption proof does not hold")
        counts.append(_discrete_log(share, c_sum, bound))
    return counts
