"""The elections read model (`elections`): what routes look up (an election's organisation) and what the round
sweeper finds (rounds whose deadline passed). The published record itself is read from the election's stream."""

from __future__ import annotations

from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

elections = Projection("elections", tables=["elections"])


def _status(e: Recorded, status: str) -> Statements:
    return [stmt("UPDATE elections SET status = $2 WHERE election_id = $1::uuid", e.data["election_id"], status)]


@elections.on("ElectionCalled")
def on_election_called(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO elections (election_id, org_id, title, body, status) "
            "VALUES ($1::uuid, $2::uuid, $3, $4, 'nominating') ON CONFLICT (election_id) DO NOTHING",
            d["election_id"],
            d["org_id"],
            d["title"],
            d["body"],
        )
    ]


@elections.on("CandidatesConfirmed")
def on_candidates_confirmed(e: Recorded) -> Statements:
    return _status(e, "confirmed")


@elections.on("ElectionRoundOpened")
def on_election_round_opened(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "UPDATE elections SET status = 'voting', round = $2, closes_at = $3::text::timestamptz "
            "WHERE election_id = $1::uuid",
            d["election_id"],
            d["round"],
            d["closes_at"],
        )
    ]


@elections.on("ElectionRoundCounted")
def on_election_round_counted(e: Recorded) -> Statements:
    return _status(e, "between_rounds")


@elections.on("ElectionConcluded")
def on_election_concluded(e: Recorded) -> Statements:
    return _status(e, "concluded")


@elections.on("ElectionFailed")
def on_election_failed(e: Recorded) -> Statements:
    return _status(e, "failed")
