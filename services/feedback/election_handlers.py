"""Election command handlers: load the election's stream, decide, append. Ballots go to the round's box, not the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.feedback import election_box, election_sealing, elections
from services.feedback.elections import Assembly, Election, Status
from services.feedback.events import ElectionRoundCounted
from shared.errors import DomainError, NotFoundError
from shared.store import Metadata, Stream, StreamStore

log = logging.getLogger("services.feedback")

Clock = Callable[[], datetime]
RoundKeyring = Callable[[UUID, int, int], election_sealing.RoundKeys]  # election, round, candidates -> keys

_ELECTION_LOCK = 31  # pg_advisory_xact_lock(31, hashtext(election id)): ballots share it, the count takes it alone

# the active members of the organisation's whole subtree (the kernel's directory)
_SUBTREE_MEMBERS = (
    "SELECT m.member_id, m.member_no FROM directory_members m JOIN directory_subtree($1) USING (org_id)"
    " WHERE m.status = 'active'"
)
_SUBTREE_MEMBER = _SUBTREE_MEMBERS + " AND m.member_id = ANY($2::uuid[])"


def election_stream(election_id: UUID) -> str:
    return f"election-{election_id}"


class Elections:
    def __init__(self, store: StreamStore, clock: Clock, keyring: RoundKeyring) -> None:
        self.store = store
        self.clock = clock
        self.keyring = keyring

    async def load(self, conn: asyncpg.Connection, election_id: UUID) -> tuple[Stream, Election | None]:
        return await self.store.load_folded(conn, election_stream(election_id), elections.fold)

    async def _members(self, conn: asyncpg.Connection, org_id: UUID, member_ids: list[UUID]) -> dict[UUID, str]:
        rows = await conn.fetch(_SUBTREE_MEMBER, org_id, member_ids)
        return {r["member_id"]: r["member_no"] for r in rows}

    async def call(self, conn: asyncpg.Connection, cmd: elections.CallElection, meta: Metadata) -> UUID:
        org_known = bool(await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", cmd.org_id))
        if cmd.representatives:
            active = await self._members(conn, cmd.org_id, list(cmd.representatives))
            if missing := set(cmd.representatives) - set(active):
                raise DomainError(
                    "not_eligible",
                    f"representatives must be active members of the organisation: {sorted(map(str, missing))}",
                )
        events = elections.call_election(cmd, org_known=org_known)
        await self.store.append(conn, Stream(election_stream(cmd.election_id)), events, meta)
        return cmd.election_id

    async def nominate(self, conn: asyncpg.Connection, election_id: UUID, candidate_id: UUID, meta: Metadata) -> None:
        stream, state = await self.load(conn, election_id)
        member_no = None
        if state is not None:
            member_no = (await self._members(conn, state.org_id, [candidate_id])).get(candidate_id)
        await self.store.append(conn, stream, elections.nominate(state, election_id, candidate_id, member_no), meta)

    async def confirm(self, conn: asyncpg.Connection, election_id: UUID, meta: Metadata) -> None:
        stream, state = await self.load(conn, election_id)
        await self.store.append(conn, stream, elections.confirm_candidates(state, election_id), meta)

    async def open_round(
        self, conn: asyncpg.Connection, election_id: UUID, opens_at: datetime, closes_at: datetime, meta: Metadata
    ) -> int:
        await self._lock(conn, election_id, shared=False)
        stream, state = await self.load(conn, election_id)
        electorate: list[tuple[UUID, str]] = []
        keys: tuple[str, ...] = ()
        if state is not None:
            if state.status is Status.CONFIRMED:
                if state.assembly is Assembly.REPRESENTATIVES:
                    members = await self._members(conn, state.org_id, list(state.representatives))
                    electorate = list(members.items())
                else:
                    electorate = [
                        (r["member_id"], r["member_no"]) for r in await conn.fetch(_SUBTREE_MEMBERS, state.org_id)
                    ]
            candidates = state.candidates if state.status is Status.CONFIRMED else state.next_candidates
            if candidates:
                round_keys = self.keyring(election_id, len(state.rounds) + 1, len(candidates))
                keys = tuple(k.hex() for k in round_keys.public)
        events = elections.open_round(
            state, election_id, self.clock(), opens_at, closes_at, electorate=electorate, public_keys=keys
        )
        await self.store.append(conn, stream, events, meta)
        return len(state.rounds) + 1 if state is not None else 0

    async def _lock(self, conn: asyncpg.Connection, election_id: UUID, *, shared: bool) -> None:
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await conn.execute(f"SELECT {fn}($1, hashtext($2))", _ELECTION_LOCK, str(election_id))

    async def cast_ballot(
        self, conn: asyncpg.Connection, election_id: UUID, voter_id: UUID, approve: list[UUID]
    ) -> str:
        """One sealed ballot, in the caller's transaction; returns its receipt. No metadata, no event, no log line."""
        await self._lock(conn, election_id, shared=True)  # a count waits for ballots in flight
        _, state = await self.load(conn, election_id)
        if state is None:
            raise NotFoundError("election", election_id)
        current = state.current
        round_no = current.number if current is not None else 0
        already = current is not None and await election_box.has_voted(conn, election_id, round_no, voter_id)
        ballot = elections.cast_ballot(state, self.clock(), voter_id=voter_id, already_voted=already, approve=approve)
        assert current is not None
        keys = [bytes.fromhex(k) for k in current.public_keys]
        sealed = election_sealing.seal(election_id, round_no, keys, ballot.approvals, current.seats)
        await election_box.drop(conn, election_id, round_no, voter_id, sealed)
        return sealed.receipt

    async def close_round(self, conn: asyncpg.Connection, election_id: UUID, meta: Metadata) -> Election:
        await self._lock(conn, election_id, shared=False)
        stream, state = await self.load(conn, election_id)
        current = elections.closable(state, election_id)
        assert state is not None
        turnout = await election_box.turnout(conn, election_id, current.number)
        if strangers := await election_box.strangers(conn, election_id, current.number, state.voters):
            raise DomainError("count_refused", f"the register names {strangers} voters outside the electorate")
        if turnout <= current.eligible and elections.quorum_met(state.rules, current.eligible, turnout):
            keys = self.keyring(election_id, current.number, len(current.candidates))
            public = [bytes.fromhex(k) for k in current.public_keys]
            try:
                counted = await election_box.count(
                    conn, election_id, current.number, keys, public, current.seats, turnout
                )
            except election_sealing.ElectionSealingError as exc:  # nothing is published, the round stays open
                raise DomainError("count_refused", str(exc)) from exc
            events = elections.close_round(
                state,
                election_id,
                turnout=turnout,
                tally=dict(zip(current.candidates, counted.counts, strict=True)),
                ballots_digest=counted.digest,
                summed=counted.summed.hex(),
                decryption_proofs=[p.to_hex() for p in counted.proofs],
            )
        else:  # no valid vote: the ballots are deleted unopened
            await election_box.discard(conn, election_id, current.number)
            events = elections.close_round(state, election_id, turnout=turnout, tally=None)
        await self.store.append(conn, stream, events, meta)
        log.info("election round counted", extra={"election_id": str(election_id), "round": current.number})
        for event in events:
            state = elections.evolve(state, event)
        assert state is not None
        return state

    async def overdue_rounds(self, conn: asyncpg.Connection) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT election_id FROM elections WHERE status = 'voting' AND closes_at <= $1", self.clock()
        )
        return [r["election_id"] for r in rows]

    async def settle(self, conn: asyncpg.Connection, election_id: UUID, meta: Metadata) -> None:
        """Count the round whose deadline passed, unless someone already did."""
        await self._lock(conn, election_id, shared=False)
        _, state = await self.load(conn, election_id)
        current = state.current if state is not None else None
        if state is not None and state.status is Status.VOTING and current and current.closes_at <= self.clock():
            await self.close_round(conn, election_id, meta)

    # --- the published record ---

    async def view(self, conn: asyncpg.Connection, election_id: UUID) -> dict[str, Any]:
        """Everything published about the election: anyone can re-run its count from this and the ballot sets."""
        _, state = await self.load(conn, election_id)
        if state is None:
            raise NotFoundError("election", election_id)
        return election_view(state)

    async def ballots(self, conn: asyncpg.Connection, election_id: UUID, round_no: int) -> dict[str, Any]:
        _, state = await self.load(conn, election_id)
        if state is None:
            raise NotFoundError("election", election_id)
        if not 1 <= round_no <= len(state.rounds):
            raise NotFoundError("round", round_no)
        current = state.rounds[round_no - 1]
        rows = await election_box.published(conn, election_id, round_no) if current.counted else []
        return {
            "election_id": election_id,
            "round": round_no,
            "seats": current.seats,
            "candidates": current.candidates,
            "public_keys": current.public_keys,
            "counted": current.counted is not None,
            "ballots": [
                {"receipt": r["receipt"], "ciphertext": r["ciphertext"].hex(), "proof": r["proof"].hex()} for r in rows
            ],
        }

    async def check_receipt(self, conn: asyncpg.Connection, election_id: UUID, receipt: str) -> dict[str, Any]:
        round_no = await election_box.find_receipt(conn, election_id, receipt.lower())
        return {"election_id": election_id, "receipt": receipt, "published": round_no is not None, "round": round_no}


def _counted_view(counted: ElectionRoundCounted | None) -> dict[str, Any] | None:
    if counted is None:
        return None
    return counted.public_data()


def election_view(state: Election) -> dict[str, Any]:
    return {
        "election_id": state.election_id,
        "org_id": state.org_id,
        "title": state.title,
        "body": state.body,
        "assembly": state.assembly,
        "seats": state.seats,
        "rules": {
            "quorum": str(state.rules.quorum),
            "majority_base": state.rules.majority_base,
            "min_margin": str(state.rules.min_margin),
            "max_rounds": state.rules.max_rounds,
        },
        "status": state.status,
        "candidates": [{"candidate_id": c, "member_no": state.member_nos.get(c)} for c in state.nominated],
        "confirmed_candidates": state.candidates,
        "eligible": len(state.electorate_member_nos),
        "electorate_member_nos": state.electorate_member_nos,
        "rounds": [
            {
                "round": r.number,
                "seats": r.seats,
                "candidates": r.candidates,
                "opens_at": r.opens_at,
                "closes_at": r.closes_at,
                "eligible": r.eligible,
                "public_keys": r.public_keys,
                "count": _counted_view(r.counted),
            }
            for r in state.rounds
        ],
        "elected": state.elected if state.status is Status.CONCLUDED else (),
    }
