"""Feedback's command handlers: load, decide, append (outbox rows ride along). Ballots go to the box, not the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from published.membership import MemberStatus
from services.feedback import ballot_box, domain
from services.feedback.domain import Campaign, Electorate, Request
from services.feedback.events import CampaignOpened, RatingGiven, ResultsPublished
from shared.causation import caused_by
from shared.errors import NotFoundError
from shared.store import Metadata, Stream, StreamStore

log = logging.getLogger("services.feedback")

Clock = Callable[[], datetime]

# the active members of the organisation's whole subtree
_SUBTREE_MEMBERS = (
    "SELECT m.member_id FROM directory_members m JOIN directory_subtree($1) USING (org_id) WHERE m.status = 'active'"
)
_LOWER_ORGS = "SELECT org_id FROM directory_orgs WHERE parent_id = $1 AND status = 'active'"


def campaign_stream(campaign_id: UUID) -> str:
    return f"campaign-{campaign_id}"


def rating_stream(redemption_id: UUID) -> str:
    return f"rating-{redemption_id}"


def request_stream(request_id: UUID) -> str:
    return f"request-{request_id}"


def campaign_from_row(row: Any) -> Campaign:
    results = None
    if row["results"] is not None:
        results = ResultsPublished(
            campaign_id=row["campaign_id"],
            subject_type=row["subject_type"],
            subject_id=row["subject_id"],
            **json.loads(row["results"]),
        )
    return Campaign(
        row["campaign_id"],
        domain.SubjectType(row["subject_type"]),
        row["subject_id"],
        row["opens_at"],
        row["closes_at"],
        row["min_turnout"],
        row["eligible"],
        row["closed_at"],
        row["turnout"],
        results,
    )


class Feedback:
    def __init__(self, store: StreamStore, clock: Clock, keyring: ballot_box.Keyring) -> None:
        self.store = store
        self.clock = clock
        self.keyring = keyring  # campaign id -> its private keys, derived in memory from BALLOT_MASTER_KEY

    # --- ratings ---

    async def give_rating(self, conn: asyncpg.Connection, cmd: domain.GiveRating, meta: Metadata) -> RatingGiven:
        # a second rating of the same redemption waits here, then finds the first
        row = await conn.fetchrow("SELECT * FROM redemptions WHERE redemption_id = $1 FOR UPDATE", cmd.redemption_id)
        redemption = (
            None
            if row is None
            else domain.Redemption(
                row["redemption_id"],
                row["member_id"],
                row["item_id"],
                row["category"],
                row["org_id"],
                row["redeemed_at"],
                row["reversed"],
            )
        )
        stream, state = await self.store.load_folded(conn, rating_stream(cmd.redemption_id), domain.fold)
        [rating] = domain.give_rating(cmd, redemption, already_rated=state is not None)
        await self.store.append(conn, stream, [rating], meta)
        assert isinstance(rating, RatingGiven)
        return rating

    # --- campaigns ---

    async def open_campaign(
        self, conn: asyncpg.Connection, cmd: domain.OpenCampaign, meta: Metadata, electorate_as_of: str | None = None
    ) -> CampaignOpened:
        """Open the campaign with its electorate as the directory knows it now, which holds at least membership's
        log through `electorate_as_of` (measured before this transaction read the directory)."""
        org_known = bool(await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", cmd.electorate_org_id))
        subject_known = bool(await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", cmd.subject_id))
        query = _SUBTREE_MEMBERS if cmd.electorate is Electorate.MEMBERS else _LOWER_ORGS
        voters = [r[0] for r in await conn.fetch(query, cmd.electorate_org_id)]
        events = domain.open_campaign(
            cmd,
            self.clock(),
            electorate_org_known=org_known,
            subject_known=subject_known,
            voters=voters,
            electorate_as_of=electorate_as_of,
        )
        await self.store.append(conn, Stream(campaign_stream(cmd.campaign_id)), events, meta)
        await ballot_box.install(conn, cmd.campaign_id, self.keyring(cmd.campaign_id).public)
        [opened] = events
        assert isinstance(opened, CampaignOpened)
        return opened

    async def campaign(self, conn: asyncpg.Connection, campaign_id: UUID, lock: str = "") -> Campaign:
        row = await conn.fetchrow(f"SELECT * FROM campaigns WHERE campaign_id = $1 {lock}", campaign_id)
        if row is None:
            raise NotFoundError("campaign", campaign_id)
        return campaign_from_row(row)

    async def cast_ballot(
        self, conn: asyncpg.Connection, campaign_id: UUID, voter_id: UUID, score: int, comment: str | None
    ) -> None:
        """One ballot, sealed, in the caller's transaction. No metadata, no event, no log line: see ballot_box.py."""
        # a close waits for ballots in flight (FOR SHARE against its FOR UPDATE): none lands after the count
        campaign = await self.campaign(conn, campaign_id, "FOR SHARE")
        eligible = bool(
            await conn.fetchval(
                "SELECT 1 FROM eligible_voters WHERE campaign_id = $1 AND voter_id = $2", campaign_id, voter_id
            )
        )
        already = await ballot_box.has_voted(conn, campaign_id, voter_id)
        ballot = domain.cast_ballot(
            campaign, self.clock(), eligible=eligible, already_voted=already, score=score, comment=comment
        )
        await ballot_box.drop(conn, campaign_id, voter_id, ballot)

    async def close_campaign(
        self, conn: asyncpg.Connection, campaign_id: UUID, meta: Metadata, *, on_deadline: bool = False
    ) -> Campaign:
        await self.campaign(conn, campaign_id, "FOR UPDATE")
        stream_id = campaign_stream(campaign_id)
        stream, state = await self.store.load_existing(conn, stream_id, domain.fold, Campaign, "campaign", campaign_id)
        domain.closable(state)
        turnout = await ballot_box.turnout(conn, campaign_id)
        tally = None
        if domain.results_visible(state, turnout):
            tally = await ballot_box.count(conn, campaign_id, self.keyring(campaign_id), turnout)
        else:  # the results will never be shown: the ballots are deleted unopened
            await ballot_box.discard(conn, campaign_id)
        events = domain.close_campaign(state, self.clock(), turnout, tally)
        if on_deadline:  # whoever records it, the close follows from the opening, which set the deadline
            meta = caused_by(stream.events[0], meta.actor)
        await self.store.append(conn, stream, events, meta)
        log.info("campaign closed", extra={"campaign_id": str(campaign_id), "turnout": turnout})
        return await self.campaign(conn, campaign_id)

    async def settle(self, conn: asyncpg.Connection, campaign_id: UUID, meta: Metadata) -> Campaign:
        """The campaign, with its deadline's close recorded if the deadline passed and nobody recorded it yet."""
        campaign = await self.campaign(conn, campaign_id)
        if campaign.recorded_closed or domain.phase(campaign, self.clock()) is not domain.Phase.CLOSED:
            return campaign
        campaign = await self.campaign(conn, campaign_id, "FOR UPDATE")
        if campaign.recorded_closed:  # another request or the sweeper got here first
            return campaign
        return await self.close_campaign(conn, campaign_id, meta, on_deadline=True)

    async def overdue_campaigns(self, conn: asyncpg.Connection) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT campaign_id FROM campaigns WHERE closed_at IS NULL AND closes_at <= $1", self.clock()
        )
        return [r["campaign_id"] for r in rows]

    # --- requests ---

    async def raise_request(self, conn: asyncpg.Connection, cmd: domain.RaiseRequest, meta: Metadata) -> UUID:
        row = await conn.fetchrow(
            "SELECT member_id, org_id, status FROM directory_members WHERE member_id = $1", cmd.member_id
        )
        member = None if row is None else domain.MemberRef(row["member_id"], row["org_id"], MemberStatus(row["status"]))
        events = domain.raise_request(cmd, member)
        await self.store.append(conn, Stream(request_stream(cmd.request_id)), events, meta)
        return cmd.request_id

    async def answer_request(
        self, conn: asyncpg.Connection, request_id: UUID, by: str, text: str, meta: Metadata
    ) -> None:
        stream_id = request_stream(request_id)
        stream, state = await self.store.load_existing(conn, stream_id, domain.fold, Request, "request", request_id)
        await self.store.append(conn, stream, domain.answer_request(state, by, text), meta)
