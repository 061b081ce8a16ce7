"""The ballot boxes of election rounds: the only code that reads or writes `election_voted`, `election_sealed` and
`election_ballots`.

As for campaigns (ballot_box.py, docs/anonymity.md): a ballot appends no event and logs nothing; the register row
and one row of ciphertext (with its proofs) are inserted in one transaction. The count verifies every ballot's
proofs, adds them up, and publishes them in receipt order as rows written by the count, which carry no link to a
voter; the sealed rows are deleted in the same transaction. Below the quorum the sealed rows are deleted unread.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from services.feedback import election_sealing
from shared.errors import DomainError

_CHUNK = 2000


async def has_voted(conn: asyncpg.Connection, election_id: UUID, round_no: int, voter_id: UUID) -> bool:
    sql = "SELECT 1 FROM election_voted WHERE election_id = $1 AND round = $2 AND voter_id = $3"
    return bool(await conn.fetchval(sql, election_id, round_no, voter_id))


async def drop(
    conn: asyncpg.Connection,
    election_id: UUID,
    round_no: int,
    voter_id: UUID,
    sealed: election_sealing.SealedElectionBallot,
) -> None:
    marked = await conn.execute(
        "INSERT INTO election_voted (election_id, round, voter_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        election_id,
        round_no,
        voter_id,
    )
    if marked == "INSERT 0 0":
        raise DomainError("already_voted", "one voter, one ballot per round: this voter's ballot is in the box")
    await conn.execute(
        "INSERT INTO election_sealed (election_id, round, ciphertext, proof) VALUES ($1, $2, $3, $4)",
        election_id,
        round_no,
        sealed.ciphertext,
        sealed.proof,
    )


async def turnout(conn: asyncpg.Connection, election_id: UUID, round_no: int) -> int:
    sql = "SELECT count(*) FROM election_voted WHERE election_id = $1 AND round = $2"
    return int(await conn.fetchval(sql, election_id, round_no))


async def strangers(conn: asyncpg.Connection, election_id: UUID, round_no: int, electorate: Iterable[UUID]) -> int:
    """Register rows of voters outside the electorate: none unless someone wrote the register by hand."""
    sql = "SELECT count(*) FROM election_voted WHERE election_id = $1 AND round = $2 AND NOT voter_id = ANY($3::uuid[])"
    return int(await conn.fetchval(sql, election_id, round_no, list(electorate)))


def digest(receipts: Sequence[str]) -> str:
    """SHA-256 over the sorted receipts, one per line: the published set's fingerprint in the count's event."""
    return hashlib.sha256("".join(f"{r}\n" for r in sorted(receipts)).encode()).hexdigest()


@dataclass(frozen=True)
class Count:
    counts: list[int]
    proofs: list[election_sealing.Decryption]
    summed: bytes
    digest: str


async def count(
    conn: asyncpg.Connection,
    election_id: UUID,
    round_no: int,
    keys: election_sealing.RoundKeys,
    public_keys: Sequence[bytes],
    seats: int,
    turnout: int,
) -> Count:
    """Check, add up and publish the round's ballots, and decrypt the sum with proofs; in the closing transaction."""
    if [k.hex() for k in keys.public] != [k.hex() for k in public_keys]:
        raise election_sealing.ElectionSealingError(
            f"election {election_id} round {round_no} was opened under another BALLOT_MASTER_KEY"
        )
    rows = await conn.fetch(
        "SELECT ciphertext, proof FROM election_sealed WHERE election_id = $1 AND round = $2", election_id, round_no
    )
    if len(rows) != turnout:
        raise election_sealing.ElectionSealingError(f"the box holds {len(rows)} ballots and the register {turnout}")

    def check_and_add() -> bytes:
        for r in rows:
            if not election_sealing.verify_ballot(
                election_id, round_no, public_keys, seats, r["ciphertext"], r["proof"]
            ):
                raise election_sealing.ElectionSealingError("a sealed ballot's proofs do not hold")
        return election_sealing.add_up((r["ciphertext"] for r in rows), len(public_keys))

    summed = await asyncio.to_thread(check_and_add)
    if summed:
        counts, proofs = await asyncio.to_thread(
            election_sealing.decrypt_with_proof, election_id, round_no, keys, summed, turnout
        )
    else:
        counts, proofs = [0] * len(public_keys), []
    published = sorted((election_sealing.receipt(r["ciphertext"]), r["ciphertext"], r["proof"]) for r in rows)
    for start in range(0, len(published), _CHUNK):
        await conn.executemany(
            "INSERT INTO election_ballots (election_id, round, receipt, ciphertext, proof) VALUES ($1, $2, $3, $4, $5)",
            [(election_id, round_no, *row) for row in published[start : start + _CHUNK]],
        )
    await discard(conn, election_id, round_no)
    return Count(counts, proofs, summed, digest([p[0] for p in published]))


async def discard(conn: asyncpg.Connection, election_id: UUID, round_no: int) -> None:
    await conn.execute("DELETE FROM election_sealed WHERE election_id = $1 AND round = $2", election_id, round_no)


async def published(conn: asyncpg.Connection, election_id: UUID, round_no: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT receipt, ciphertext, proof FROM election_ballots WHERE election_id = $1 AND round = $2 "
        "ORDER BY receipt",
        election_id,
        round_no,
    )
    return rows


async def find_receipt(conn: asyncpg.Connection, election_id: UUID, receipt: str) -> int | None:
    """The round whose published set holds this receipt, if any."""
    sql = "SELECT round FROM election_ballots WHERE election_id = $1 AND receipt = $2"
    value: int | None = await conn.fetchval(sql, election_id, receipt)
    return value
