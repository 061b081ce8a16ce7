"""The ballot box: the only code that reads or writes `voted`, `ballot_box` and `sealed_ballots`. Keep it that way.

What makes a ballot secret here, even to whoever copies the database, its WAL and its backups (docs/anonymity.md):
- a ballot appends no event, writes no outbox row, no inbox row, no idempotency record, and logs nothing;
- the register `voted(campaign_id, voter_id)` holds no score, no time, no sequence;
- the ballot itself is one inserted row of ciphertext under the campaign's public key, the same size whatever the
  score and whether or not there is a comment (sealing.py). Its transaction id is the register row's, and that
  pairs a voter with a ciphertext that no one without the campaign's key can open;
- nothing is rewritten per ballot: no counter row whose successive versions (dead tuples, WAL) give each score;
- the close adds the ciphertexts up, decrypts the five sums and the comments, keeps the comments sorted by content,
  and deletes the ciphertexts; below the minimum turnout it deletes them unread;
- the register row and the ballot commit in one transaction, so there is no double vote and no lost ballot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID

import asyncpg

from services.feedback import sealing
from services.feedback.domain import SCORES, Ballot, Tally
from shared.errors import DomainError

Keyring = Callable[[UUID], sealing.CampaignKeys]
_CHUNK = 5000  # sealed ballots fetched and added up at a time (about 12 MB)


async def install(conn: asyncpg.Connection, campaign_id: UUID, public_key: sealing.PublicBallotKey) -> None:
    await conn.execute(
        "INSERT INTO ballot_box (campaign_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        campaign_id,
        public_key.to_bytes(),
    )


async def has_voted(conn: asyncpg.Connection, campaign_id: UUID, voter_id: UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM voted WHERE campaign_id = $1 AND voter_id = $2", campaign_id, voter_id)
    )


async def drop(conn: asyncpg.Connection, campaign_id: UUID, voter_id: UUID, ballot: Ballot) -> None:
    """Mark the voter as having voted and drop the sealed ballot into the box, in the caller's transaction."""
    key = await conn.fetchval("SELECT public_key FROM ballot_box WHERE campaign_id = $1 AND NOT counted", campaign_id)
    if key is None:
        raise DomainError("campaign_closed", "the campaign's ballot box is closed")
    # a second ballot of the same voter racing this one waits on the key, then finds it taken
    marked = await conn.execute(
        "INSERT INTO voted (campaign_id, voter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", campaign_id, voter_id
    )
    if marked == "INSERT 0 0":
        raise DomainError("already_voted", "one voter, one ballot: this voter's ballot is already in the box")
    sealed = sealing.seal(sealing.PublicBallotKey.from_bytes(key), ballot)
    await conn.execute(
        "INSERT INTO sealed_ballots (campaign_id, score, comment) VALUES ($1, $2, $3)",
        campaign_id,
        sealed.score,
        sealed.comment,
    )


async def turnout(conn: asyncpg.Connection, campaign_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM voted WHERE campaign_id = $1", campaign_id))


async def count(conn: asyncpg.Connection, campaign_id: UUID, keys: sealing.CampaignKeys, turnout: int) -> Tally:
    """Add the sealed ballots up and open the sums and the comments; then keep the comments and drop the ballots.

    In the closing transaction, which holds the campaign's row: no ballot lands after the count.
    """
    stored = await conn.fetchval("SELECT public_key FROM ballot_box WHERE campaign_id = $1", campaign_id)
    if stored != keys.public.to_bytes():
        raise sealing.SealingError(
            f"campaign {campaign_id} was opened under another BALLOT_MASTER_KEY: its ballots cannot be opened"
        )
    total = sealing.SealedSum()
    comments: list[str] = []

    def add(rows: list[asyncpg.Record]) -> None:
        total.add(r["score"] for r in rows)
        comments.extend(c for r in rows if (c := sealing.open_comment(keys, r["comment"])) is not None)

    cursor = await conn.cursor("SELECT score, comment FROM sealed_ballots WHERE campaign_id = $1", campaign_id)
    while rows := await cursor.fetch(_CHUNK):
        await asyncio.to_thread(add, rows)  # the curve and the boxes are C: the event loop keeps serving
    counts = await asyncio.to_thread(total.open, keys, turnout)
    if sum(counts) != turnout:
        raise sealing.SealingError(f"the box holds {sum(counts)} ballots and the register {turnout} voters")
    await conn.execute(
        "UPDATE ballot_box SET counted = true, comments = $2 WHERE campaign_id = $1", campaign_id, sorted(comments)
    )
    await conn.execute("DELETE FROM sealed_ballots WHERE campaign_id = $1", campaign_id)
    return Tally(dict(zip(SCORES, counts, strict=True)))


async def comments(conn: asyncpg.Connection, campaign_id: UUID) -> list[str]:
    """The comments, in content order; only ever asked for once the results are shown."""
    value = await conn.fetchval("SELECT comments FROM ballot_box WHERE campaign_id = $1", campaign_id)
    return list(value or [])


async def discard(conn: asyncpg.Connection, campaign_id: UUID) -> None:
    """Closed below the minimum turnout: the results will never be shown, so the ballots go unopened."""
    await conn.execute("DELETE FROM sealed_ballots WHERE campaign_id = $1", campaign_id)
    await conn.execute(
        "UPDATE ballot_box SET counted = true, discarded = true, comments = '{}' WHERE campaign_id = $1", campaign_id
    )


async def seal_plaintext_boxes(conn: asyncpg.Connection, keyring: Keyring) -> int:
    """Move the boxes of campaigns opened before ballots were sealed into sealed rows; returns how many it moved.

    An open campaign's counts become one sealed row of counts and each comment a sealed row of its own (both add
    up like ballots); a closed one keeps its comments for its results. In the caller's transaction.
    """
    rows = await conn.fetch(
        "SELECT p.*, c.closed_at FROM plaintext_ballot_box p LEFT JOIN campaigns c USING (campaign_id) FOR UPDATE OF p"
    )
    for row in rows:
        campaign_id = row["campaign_id"]
        key = keyring(campaign_id).public
        closed = row["closed_at"] is not None or row["discarded"]
        await conn.execute(
            "INSERT INTO ballot_box (campaign_id, public_key, counted, discarded, comments) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING",
            campaign_id,
            key.to_bytes(),
            closed,
            row["discarded"],
            list(row["comments"]) if closed else [],
        )
        if not closed:
            sealed = [sealing.seal_counts(key, [row[f"score_{s}"] for s in SCORES], None)]
            sealed += [sealing.seal_counts(key, [0] * len(SCORES), c) for c in row["comments"]]
            await conn.executemany(
                "INSERT INTO sealed_ballots (campaign_id, score, comment) VALUES ($1, $2, $3)",
                [(campaign_id, s.score, s.comment) for s in sealed],
            )
        await conn.execute("DELETE FROM plaintext_ballot_box WHERE campaign_id = $1", campaign_id)
    return len(rows)
