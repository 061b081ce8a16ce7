"""Sealed ballots: what is stored is ciphertext of one size, adds up, and opens only with the campaign's key."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.feedback import sealing
from services.feedback.domain import COMMENT_MAX, SCORES, Ballot

MASTER = os.urandom(32)
CAMPAIGN = uuid.uuid4()
KEYS = sealing.CampaignKeys.derive(MASTER, CAMPAIGN)
PUBLIC = KEYS.public


def tally(sealed: list[sealing.SealedBallot], keys: sealing.CampaignKeys = KEYS) -> list[int]:
    total = sealing.SealedSum()
    total.add(s.score for s in sealed)
    return total.open(keys, len(sealed))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5), max_size=40))
def test_the_sum_of_sealed_ballots_opens_to_the_distribution(scores: list[int]) -> None:
    sealed = [sealing.seal(PUBLIC, Ballot(s)) for s in scores]
    assert tally(sealed) == [scores.count(s) for s in SCORES]


def test_added_in_chunks_or_at_once_the_sum_is_the_same() -> None:
    scores = [1, 2, 3, 4, 5, 3, 5, 5]
    sealed = [sealing.seal(PUBLIC, Ballot(s)) for s in scores]
    total = sealing.SealedSum()
    for i in range(0, len(sealed), 3):
        total.add(s.score for s in sealed[i : i + 3])
    assert total.open(KEYS, len(sealed)) == [1, 1, 2, 1, 3]
    assert total.ballots == len(sealed)


def test_every_ballot_is_ciphertext_of_one_size_and_never_the_same_twice() -> None:
    ballots = [Ballot(1), Ballot(5), Ballot(5, "很好"), Ballot(3, "长" * COMMENT_MAX), Ballot(2, "\U0001f600" * 500)]
    sealed = [sealing.seal(PUBLIC, b) for b in ballots] + [sealing.seal(PUBLIC, Ballot(5))]
    assert {len(s.score) for s in sealed} == {sealing.SCORE_BYTES}
    assert {len(s.comment) for s in sealed} == {sealing.COMMENT_BYTES}  # with or without a comment, short or long
    points = [s.score[i : i + sealing.POINT] for s in sealed for i in range(0, sealing.SCORE_BYTES, sealing.POINT)]
    assert len(set(points)) == len(points)  # fresh randomness: equal scores do not give equal ciphertexts
    assert len({s.comment for s in sealed}) == len(sealed)
    for s, ballot in zip(sealed, ballots, strict=False):
        assert "很好".encode() not in s.comment
        assert sealing.open_comment(KEYS, s.comment) == ballot.comment


def test_another_campaigns_key_or_another_master_key_opens_nothing() -> None:
    sealed = [sealing.seal(PUBLIC, Ballot(s, "意见")) for s in (5, 5, 4)]
    for keys in (
        sealing.CampaignKeys.derive(MASTER, uuid.uuid4()),
        sealing.CampaignKeys.derive(os.urandom(32), CAMPAIGN),
    ):
        assert keys.public.to_bytes() != PUBLIC.to_bytes()
        with pytest.raises(sealing.SealingError):
            tally(sealed, keys)
        with pytest.raises(sealing.SealingError):
            sealing.open_comment(keys, sealed[0].comment)


def test_keys_are_derived_not_stored_and_never_shown() -> None:
    again = sealing.CampaignKeys.derive(MASTER, CAMPAIGN)
    assert again.public.to_bytes() == PUBLIC.to_bytes()
    assert sealing.PublicBallotKey.from_bytes(PUBLIC.to_bytes()).to_bytes() == PUBLIC.to_bytes()
    assert "secret" in repr(KEYS)
    assert all(str(x) not in repr(KEYS) for x in KEYS.score_secrets)


def test_a_sum_that_does_not_fit_the_turnout_is_refused() -> None:
    sealed = [sealing.seal(PUBLIC, Ballot(5)) for _ in range(4)]
    total = sealing.SealedSum()
    total.add(s.score for s in sealed)
    with pytest.raises(sealing.SealingError):
        total.open(KEYS, 3)  # four fives do not fit in a register of three voters


def test_counts_seal_like_ballots() -> None:
    sealed = [sealing.seal_counts(PUBLIC, [3, 0, 1, 0, 7], None), sealing.seal_counts(PUBLIC, [0] * 5, "旧意见")]
    sealed.append(sealing.seal(PUBLIC, Ballot(2)))
    total = sealing.SealedSum()
    total.add(s.score for s in sealed)
    assert total.open(KEYS, 12) == [3, 1, 1, 0, 7]
    assert [sealing.open_comment(KEYS, s.comment) for s in sealed] == [None, "旧意见", None]


def test_make_run_gives_feedback_its_ballot_key_and_keeps_the_keys_it_made(tmp_path: Path) -> None:
    from devstack.run import dev_secrets  # noqa: PLC0415

    (tmp_path / "secrets.env").write_text("PII_MASTER_KEY=a2V5\nBLIND_INDEX_KEY=YmxpbmQ=\n")  # made before ballots
    made = dev_secrets(tmp_path)
    assert (made["PII_MASTER_KEY"], made["BLIND_INDEX_KEY"]) == ("a2V5", "YmxpbmQ=")
    assert len(base64.b64decode(made["BALLOT_MASTER_KEY"])) == 32
    assert dev_secrets(tmp_path) == made  # the next run reads the same keys
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
