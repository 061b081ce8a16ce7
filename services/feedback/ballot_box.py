"""The ballot box: the only code that reads or writes `voted` and `ballot_box`. Keep it that way.

What makes a ballot anonymous here (docs/anonymity.md says what it does not cover):
- a ballot appends no event, writes no outbox row, no inbox row, no idempotency record, and logs nothing;
- the register `voted(campaign_id, voter_id)` holds no score, no time, no sequence;
- the box is one row per campaign, counts per score plus the comments sorted by content. Every ballot rewrites
  that whole row the same way (all five counters and the comment array), so the row's system columns (xmin,
  ctid, its TOAST chunks) point at the last ballot's transaction and say nothing about its score or comment;
- the register row and the box update commit in one transaction, so there is no double vote and no lost ballot.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.feedback.domain import Ballot, Tally
from shared.errors import DomainError

# every counter is assigned on every ballot, and the comments are re-sorted even when none is added
_DROP = """
UPDATE ballot_box SET
    score_1 = score_1 + ($2 = 1)::int,
    score_2 = score_2 + ($2 = 2)::int,
    score_3 = score_3 + ($2 = 3)::int,
    score_4 = score_4 + ($2 = 4)::int,
    score_5 = score_5 + ($2 = 5)::int,
    comments = ARRAY(SELECT c FROM unnest(comments || $3::text[]) AS c ORDER BY c COLLATE "C")
WHERE campaign_id = $1 AND NOT discarded
"""


async def install(conn: asyncpg.Connection, campaign_id: UUID) -> None:
    await conn.execute("INSERT INTO ballot_box (campaign_id) VALUES ($1) ON CONFLICT DO NOTHING", campaign_id)


async def has_voted(conn: asyncpg.Connection, campaign_id: UUID, voter_id: UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM voted WHERE campaign_id = $1 AND voter_id = $2", campaign_id, voter_id)
    )


async def drop(conn: asyncpg.Connection, campaign_id: UUID, voter_id: UUID, ballot: Ballot) -> None:
    """Mark the voter as having voted and add the ballot to the box, in the caller's transaction."""
    # a second ballot of the same voter racing this one waits on the key, then finds it taken
    marked = await conn.execute(
        "INSERT INTO voted (campaign_id, voter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", campaign_id, voter_id
    )
    if marked == "INSERT 0 0":
        raise DomainError("already_voted", "one voter, one ballot: this voter's ballot is already in the box")
    comments = [ballot.comment] if ballot.comment else []
    if await conn.execute(_DROP, campaign_id, ballot.score, comments) != "UPDATE 1":
        raise DomainError("campaign_closed", "the campaign's ballot box is closed")


async def turnout(conn: asyncpg.Connection, campaign_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM voted WHERE campaign_id = $1", campaign_id))


async def tally(conn: asyncpg.Connection, campaign_id: UUID) -> Tally:
    row = await conn.fetchrow("SELECT * FROM ballot_box WHERE campaign_id = $1", campaign_id)
    return Tally({s: int(row[f"score_{s}"]) for s in range(1, 6)} if row is not None else {})


async def comments(conn: asyncpg.Connection, campaign_id: UUID) -> list[str]:
    """The comments, in content order; only ever asked for once the results are shown."""
    value = await conn.fetchval("SELECT comments FROM ballot_box WHERE campaign_id = $1", campaign_id)
    return list(value or [])


async def discard(conn: asyncpg.Connection, campaign_id: UUID) -> None:
    """Closed below the minimum turnout: the results will never be shown, so keep nothing that could be read."""
    await conn.execute(
        "UPDATE ballot_box SET score_1 = 0, score_2 = 0, score_3 = 0, score_4 = 0, score_5 = 0, comments = '{}',"
        " discarded = true WHERE campaign_id = $1",
        campaign_id,
    )
