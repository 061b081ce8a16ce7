"""The dues service's command handlers: load the account and the policies, decide, append."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import asyncpg

from services.dues import domain
from services.dues.domain import Account
from services.dues.events import DuesPolicySet
from services.dues.policy import Policy, Rounding, month_of, validate
from shared.errors import NotFoundError
from shared.events import DomainEvent
from shared.store import Metadata, Stream, StreamStore

POLICY_STREAM = "dues-policy"


def account_stream(member_id: UUID) -> str:
    return f"dues-{member_id}"


def policies_of(stream: Stream, as_of: datetime | None = None) -> list[Policy]:
    out = []
    for entry in stream.events:
        e = entry.event
        if isinstance(e, DuesPolicySet) and (as_of is None or entry.recorded_at <= as_of):
            out.append(
                Policy(
                    e.effective_from,
                    rate=e.rate,
                    base_step=e.base_step,
                    rounding=Rounding(e.rounding),
                    unpaid_months=e.unpaid_months,
                    grace_days=e.grace_days,
                    citation=e.citation,
                    recorded_at=entry.recorded_at,
                )
            )
    return out


def fold_stream(stream: Stream, as_of: datetime | None = None) -> Account | None:
    return domain.fold(
        entry.event
        for entry in stream.events
        if entry.event is not None and (as_of is None or entry.recorded_at <= as_of)
    )


@dataclass(frozen=True)
class MembershipChange:
    """One thing membership said about a member, as dues follows it: a join (`joined`: the member number and the
    date joined) or a status or organisation change (None where unchanged), and the day it counts from."""

    member_id: UUID
    on: date
    meta: Metadata
    status: str | None = None
    org_id: UUID | None = None
    joined: tuple[str, date] | None = None


class Dues:
    def __init__(self, store: StreamStore) -> None:
        self.store = store

    async def policies(self, conn: asyncpg.Connection, as_of: datetime | None = None) -> list[Policy]:
        return policies_of(await self.store.load(conn, POLICY_STREAM), as_of)

    async def account(self, conn: asyncpg.Connection, member_id: UUID) -> tuple[Stream, Account | None]:
        """The account, its row locked first: the monthly review takes rows the same way (and skips locked ones),
        so a command and the review never both append to one account."""
        await conn.execute("SELECT 1 FROM dues_accounts WHERE member_id = $1 FOR UPDATE", member_id)
        stream = await self.store.load(conn, account_stream(member_id))
        return stream, fold_stream(stream)

    async def _decide(
        self, conn: asyncpg.Connection, events: list[DomainEvent], stream: Stream, meta: Metadata
    ) -> None:
        if events:
            await self.store.append(conn, stream, events, meta)

    # --- policies ---

    async def set_policy(self, conn: asyncpg.Connection, policy: Policy, today: date, meta: Metadata) -> UUID:
        validate(policy, today)
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('dues-policy'))")
        stream = await self.store.load(conn, POLICY_STREAM)
        policy_id = uuid4()
        event = DuesPolicySet(
            policy_id=policy_id,
            effective_from=policy.effective_from,
            rate=policy.rate,
            base_step=policy.base_step,
            rounding=policy.rounding,
            unpaid_months=policy.unpaid_months,
            grace_days=policy.grace_days,
            citation=policy.citation,
        )
        await self.store.append(conn, stream, [event], meta)
        return policy_id

    # --- what membership says ---

    async def follow_membership(self, conn: asyncpg.Connection, changes: Sequence[MembershipChange]) -> None:
        """A consumer's batch of what membership said, set-wise: one lock statement for the accounts, one read of
        their streams, one append; each change decided on the account as the changes before it left it."""
        members = sorted({c.member_id for c in changes})
        if not members:
            return
        # the accounts' rows locked as `account` locks one, in one order (the monthly review skips locked rows)
        await conn.execute(
            "SELECT 1 FROM dues_accounts WHERE member_id = ANY($1::uuid[]) ORDER BY member_id FOR UPDATE", members
        )
        loaded = await self.store.load_many(conn, [account_stream(m) for m in members])
        streams = {m: loaded[account_stream(m)] for m in members}
        states = {m: fold_stream(streams[m]) for m in members}
        appending: list[tuple[Stream, list[DomainEvent], Metadata]] = []
        for change in changes:
            state = states[change.member_id]
            if change.joined is not None:
                member_no, joined_at = change.joined
                assert change.org_id is not None
                events = domain.open_account(state, change.member_id, member_no, change.org_id, joined_at, change.on)
            elif state is None:
                continue  # not a member this service knows (yet): the join opens the account with what it says
            else:
                status, org_id = change.status or state.status, change.org_id or state.org_id
                events = domain.follow_status(state, change.member_id, status, org_id, change.on)
            for event in events:
                state = domain.evolve(state, event)
            states[change.member_id] = state
            if events:
                appending.append((streams[change.member_id], events, change.meta))
        await self.store.append_streams(conn, appending, Metadata(actor="service:dues"))

    # --- members' dues ---

    async def declare_wage_base(
        self, conn: asyncpg.Connection, member_id: UUID, base: Decimal, from_month: date, source: str, meta: Metadata
    ) -> None:
        stream, state = await self.account(conn, member_id)
        await self._decide(conn, domain.declare_wage_base(state, member_id, base, from_month, source), stream, meta)

    async def pay(
        self, conn: asyncpg.Connection, member_id: UUID, month: date, amount: Decimal, today: date, meta: Metadata
    ) -> str:
        stream, state = await self.account(conn, member_id)
        ref = f"online:{uuid4()}"
        events = domain.pay(state, member_id, month, amount, "online", ref, await self.policies(conn), today)
        await self._decide(conn, events, stream, meta)
        return ref

    async def exempt(
        self,
        conn: asyncpg.Connection,
        member_id: UUID,
        from_month: date,
        to_month: date,
        reason: str,
        today: date,
        meta: Metadata,
    ) -> None:
        stream, state = await self.account(conn, member_id)
        await self._decide(conn, domain.exempt(state, member_id, from_month, to_month, reason, today), stream, meta)

    async def _case_member(self, conn: asyncpg.Connection, case_id: UUID) -> UUID:
        member_id: UUID | None = await conn.fetchval("SELECT member_id FROM dues_cases WHERE case_id = $1", case_id)
        if member_id is None:
            raise NotFoundError("case", case_id)
        return member_id

    async def record_education(
        self,
        conn: asyncpg.Connection,
        case_id: UUID,
        contacted_on: date,
        by: str,
        note: str,
        today: date,
        meta: Metadata,
    ) -> UUID:
        member_id = await self._case_member(conn, case_id)
        stream, state = await self.account(conn, member_id)
        events = domain.record_education(
            state, member_id, case_id, contacted_on, by, note, await self.policies(conn), today
        )
        await self._decide(conn, events, stream, meta)
        return member_id

    async def decide_lapse(
        self, conn: asyncpg.Connection, case_id: UUID, by: str, reason: str, no_part: bool, today: date, meta: Metadata
    ) -> UUID:
        member_id = await self._case_member(conn, case_id)
        stream, state = await self.account(conn, member_id)
        await self._decide(
            conn, domain.decide_lapse(state, member_id, case_id, by, reason, no_part, today), stream, meta
        )
        return member_id

    # --- the monthly review (a worker) ---

    async def review_due(self, conn: asyncpg.Connection, today: date, limit: int, meta: Metadata) -> int:
        """Accounts not assessed through this month: assess them and open the cases six unpaid months call for.
        Rows are claimed with SKIP LOCKED, so replicas share the work."""
        ids = [
            r["member_id"]
            for r in await conn.fetch(
                "SELECT member_id FROM dues_accounts WHERE assessed_through IS NULL OR assessed_through < $1"
                " ORDER BY member_id LIMIT $2 FOR UPDATE SKIP LOCKED",
                month_of(today),
                limit,
            )
        ]
        if not ids:
            return 0
        policies = await self.policies(conn)
        streams = await self.store.load_many(conn, [account_stream(m) for m in ids])
        batch: list[tuple[Stream, Sequence[DomainEvent]]] = []
        for stream in streams.values():
            state = fold_stream(stream)
            if state is None:
                continue
            events = domain.review(state, policies, today, uuid4())
            if events:
                batch.append((stream, events))
        if batch:
            await self.store.append_streams(conn, batch, meta)
        return len(ids)
