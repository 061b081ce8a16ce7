"""Ballots sealed to their campaign's public key, so that a copy of the database says nothing about any of them.

A score is a one-hot vector of five counters, each encrypted with exponential ElGamal on secp256k1 (libsecp256k1,
through coincurve) under its own key, sharing one random point R = rG (randomness reuse across recipients is safe
for ElGamal): R, then C_i = r·P_i + m_i·G. Ciphertexts add up point by point, so the close adds every ballot and
decrypts five sums only; each sum decrypts to count·G, and the count is found by stepping G at most `turnout` times.
A comment is padded to one fixed size (its presence and length are secret too) and sealed with a libsodium sealed
box (X25519) to the campaign's comment key. Every ballot therefore stores the same number of bytes, all ciphertext.

The campaign's private keys are derived from the service's BALLOT_MASTER_KEY with HKDF over the campaign id, held
in memory only; the database keeps the public keys, which is what a ballot needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from coincurve import PrivateKey, PublicKey
from coincurve.utils import GROUP_ORDER_INT
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_box_SEALBYTES
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey as BoxPrivateKey
from nacl.public import PublicKey as BoxPublicKey
from nacl.public import SealedBox

from services.feedback.domain import COMMENT_MAX, SCORES, Ballot

SLOTS = len(SCORES)
POINT = 65  # an uncompressed point: four times cheaper to parse than a compressed one, which dominates the tally
SCORE_BYTES = POINT * (1 + SLOTS)
COMMENT_PAD = 2 + 4 * COMMENT_MAX  # a length, then the longest comment in UTF-8, zero-padded
COMMENT_BYTES = COMMENT_PAD + crypto_box_SEALBYTES
_SALT = b"union.feedback.ballot-keys.v1"
_SCALAR = 64  # HKDF bytes per scalar: reduced modulo the group order with negligible bias
_G = PrivateKey.from_int(1).public_key


class SealingError(Exception):
    """The sealed ballots cannot be opened as they are: the wrong master key, or rows that were tampered with."""


@dataclass(frozen=True)
class PublicBallotKey:
    """What the database keeps about a campaign's keys: enough to seal a ballot, not to open one."""

    score_keys: tuple[PublicKey, ...]
    comment_key: BoxPublicKey

    def to_bytes(self) -> bytes:
        return b"".join(k.format(compressed=False) for k in self.score_keys) + bytes(self.comment_key)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicBallotKey:
        if len(data) != POINT * SLOTS + 32:
            raise SealingError("a campaign's public key has the wrong length")
        points = tuple(PublicKey(data[i * POINT : (i + 1) * POINT]) for i in range(SLOTS))
        return cls(points, BoxPublicKey(data[POINT * SLOTS :]))


@dataclass(frozen=True)
class CampaignKeys:
    """A campaign's private keys: derived when needed, never stored, logged or sent."""

    score_secrets: tuple[int, ...]
    comment_secret: BoxPrivateKey

    @classmethod
    def derive(cls, master_key: bytes, campaign_id: UUID) -> CampaignKeys:
        okm = HKDF(SHA256(), _SCALAR * SLOTS + 32, _SALT, campaign_id.bytes).derive(master_key)
        scalars = tuple(
            int.from_bytes(okm[i * _SCALAR : (i + 1) * _SCALAR], "big") % (GROUP_ORDER_INT - 1) + 1
            for i in range(SLOTS)
        )
        return cls(scalars, BoxPrivateKey(okm[_SCALAR * SLOTS :]))

    def __repr__(self) -> str:
        return "CampaignKeys(<secret>)"

    @property
    def public(self) -> PublicBallotKey:
        return PublicBallotKey(
            tuple(PrivateKey.from_int(x).public_key for x in self.score_secrets), self.comment_secret.public_key
        )


@dataclass(frozen=True)
class SealedBallot:
    score: bytes  # R || C_1..C_5
    comment: bytes  # a sealed box of the padded comment, present whether or not there is one


def seal_counts(key: PublicBallotKey, counts: Sequence[int], comment: str | None) -> SealedBallot:
    """Seal a vector of counts (one-hot for a ballot) and a comment; fresh randomness every time."""
    r = PrivateKey()  # a uniformly random scalar from the operating system's generator
    parts = [r.public_key.format(compressed=False)]
    for public, count in zip(key.score_keys, counts, strict=True):
        shared = public.multiply(r.secret)
        parts.append((shared.add(count.to_bytes(32, "big")) if count else shared).format(compressed=False))
    return SealedBallot(b"".join(parts), SealedBox(key.comment_key).encrypt(_pad(comment)))


def seal(key: PublicBallotKey, ballot: Ballot) -> SealedBallot:
    return seal_counts(key, [int(ballot.score == s) for s in SCORES], ballot.comment)


def _pad(comment: str | None) -> bytes:
    text = (comment or "").encode("utf-8")
    if len(text) > COMMENT_PAD - 2:
        raise ValueError("a comment longer than the domain allows reached the ballot box")
    return len(text).to_bytes(2, "big") + text + bytes(COMMENT_PAD - 2 - len(text))


class SealedSum:
    """The running sum of sealed scores: six points, added chunk by chunk."""

    def __init__(self) -> None:
        self.points: list[PublicKey | None] = [None] * (1 + SLOTS)
        self.ballots = 0

    def add(self, scores: Iterable[bytes]) -> None:
        rows = list(scores)
        if not rows:
            return
        for row in rows:
            if len(row) != SCORE_BYTES:
                raise SealingError("a sealed score has the wrong length")
        for i, current in enumerate(self.points):
            terms = [PublicKey(row[i * POINT : (i + 1) * POINT]) for row in rows]
            self.points[i] = PublicKey.combine_keys(terms if current is None else [current, *terms])
        self.ballots += len(rows)

    def open(self, keys: CampaignKeys, bound: int) -> list[int]:
        """The five counts. Each is at most `bound` (the turnout): a sum that is not is refused, not guessed."""
        r_sum, *sums = self.points
        if r_sum is None:
            return [0] * SLOTS
        counts = []
        for secret, total in zip(keys.score_secrets, sums, strict=True):
            assert total is not None
            counts.append(_discrete_log(r_sum.multiply(secret.to_bytes(32, "big")), total, bound))
        return counts


def _discrete_log(mask: PublicKey, total: PublicKey, bound: int) -> int:
    """The m with total = mask + m·G, for 0 <= m <= bound: one point addition per step."""
    target = total.format(compressed=False)
    current = mask
    for m in range(bound + 1):
        if current.format(compressed=False) == target:
            return m
        try:
            current = PublicKey.combine_keys([current, _G])
        except ValueError:  # the point at infinity: only a sum that was tampered with gets there
            break
    raise SealingError("the sealed scores do not add up to a count within the turnout")


def open_comment(keys: CampaignKeys, sealed: bytes) -> str | None:
    try:
        padded = SealedBox(keys.comment_secret).decrypt(sealed)
    except CryptoError as exc:
        raise SealingError("a sealed comment does not open with the campaign's key") from exc
    length = int.from_bytes(padded[:2], "big")
    return padded[2 : 2 + length].decode("utf-8") or None
