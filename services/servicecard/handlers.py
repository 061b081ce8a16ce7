"""Service card command handlers: load the streams, decide, append (outbox rows ride along).

Every write about one member (their card following membership, a reissue, a redemption, a reversal) first
takes that member's transaction lock, then reads their streams: so a quota is checked and spent by one
writer at a time, and a freeze never interleaves with a redemption. The append's expected version stays as
the backstop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from services.servicecard import domain
from services.servicecard.domain import Card, Item, MemberFact, Usage
from shared.directory import MEMBERSHIP_SOURCE, covers
from shared.errors import NotFoundError
from shared.store import Appending, Metadata, Recorded, Stream, StreamStore, wire_name, wire_sequence

_MEMBER_LOCK = 21  # pg_advisory_xact_lock(21, hashtext(member id)): one writer per member at a time
_NEW_NUMBER_TRIES = 10


def card_stream(member_id: UUID) -> str:
    return f"card-{member_id}"


def item_stream(item_id: UUID) -> str:
    return f"item-{item_id}"


def usage_stream(member_id: UUID, item_id: UUID, year: int) -> str:
    return f"usage-{member_id}-{item_id}-{year}"


def _now() -> datetime:
    return datetime.now(UTC)


class Servicecard:
    def __init__(self, store: StreamStore) -> None:
        self.store = store

    async def _lock_member(self, conn: asyncpg.Connection, member_id: UUID) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _MEMBER_LOCK, str(member_id))

    async def card(self, conn: asyncpg.Connection, member_id: UUID) -> tuple[Stream, Card | None]:
        return await self.store.load_folded(conn, card_stream(member_id), domain.fold_card)

    async def item(self, conn: asyncpg.Connection, item_id: UUID) -> tuple[Stream, Item | None]:
        return await self.store.load_folded(conn, item_stream(item_id), domain.fold_item)

    async def usage(self, conn: asyncpg.Connection, member_id: UUID, item_id: UUID, year: int) -> tuple[Stream, Usage]:
        return await self.store.load_folded(conn, usage_stream(member_id, item_id, year), domain.fold_usage)

    async def _locked_owner(self, conn: asyncpg.Connection, card_no: str) -> UUID:
        """The member a number was issued to (a number belongs to one member for ever), locked for this
        transaction as `_lock_member` locks them: one statement."""
        member_id: UUID | None = await conn.fetchval(
            "SELECT member_id FROM cards, LATERAL (SELECT pg_advisory_xact_lock($1, hashtext(member_id::text))) AS l"
            " WHERE card_no = $2",
            _MEMBER_LOCK,
            card_no,
        )
        if member_id is None:
            raise NotFoundError("card", card_no)
        return member_id

    # --- the card follows the member ---

    async def _member_facts(self, conn: asyncpg.Connection, member_ids: Sequence[UUID]) -> dict[UUID, list[MemberFact]]:
        """Everything membership said about these members, from the inbox, in one query (the few fields a fact
        needs, picked out by the database). The source is checked here, not in the query: with it there, a plan made
        on statistics from when the inbox held little of membership's (during a big import, a minute behind) read
        every membership message through the (source, event_id) index, for each batch. By the partition key alone,
        the only good plan is the key's index, and the table's real size rules out the others."""
        rows = await conn.fetch(
            """
            SELECT position, source, envelope->>'partitionkey' AS member, envelope->>'type' AS type,
                   envelope->>'sequence' AS sequence, envelope->'data'->>'member_no' AS member_no,
                   coalesce(envelope->'data'->>'to_org_id', envelope->'data'->>'org_id') AS org
            FROM inbox WHERE envelope->>'partitionkey' = ANY($1::text[])
            """,
            [str(m) for m in member_ids],
        )
        rows.sort(key=lambda row: row["position"])  # here: ORDER BY made a full scan of the position index a candidate
        facts: dict[UUID, list[MemberFact]] = {m: [] for m in member_ids}
        for row in rows:
            name = wire_name(row["type"])
            if row["source"] == MEMBERSHIP_SOURCE and name in domain.MEMBER_EVENTS:
                facts[UUID(row["member"])].append(
                    MemberFact(
                        sequence=wire_sequence(row["sequence"]),
                        arrival=row["position"],
                        name=name,
                        org_id=UUID(row["org"]) if row["org"] else None,
                        member_no=row["member_no"],
                    )
                )
        return facts

    async def _fresh_card_numbers(self, conn: asyncpg.Connection, count: int) -> list[str]:
        # numbers are never reused: `cards` keeps every number ever issued, and its key settles a race
        fresh: set[str] = set()
        for _ in range(_NEW_NUMBER_TRIES):
            candidates = {domain.new_card_number() for _ in range(count - len(fresh))} - fresh
            taken = await conn.fetch("SELECT card_no FROM cards WHERE card_no = ANY($1::text[])", list(candidates))
            fresh |= candidates - {r["card_no"] for r in taken}
            if len(fresh) >= count:
                return sorted(fresh)
        raise RuntimeError(f"no {count} free card numbers in {_NEW_NUMBER_TRIES} tries")

    async def follow_members(self, conn: asyncpg.Connection, caused: Sequence[tuple[Recorded, Metadata]]) -> None:
        """Bring the cards in line with what membership said, message by message as if one at a time, but set-wise:
        one lock statement, one read of the facts and one of the cards, one number check, one append."""
        member_ids = sorted({UUID(str(entry.data["member_id"])) for entry, _ in caused}, key=str)
        if not member_ids:
            return
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(m)) FROM unnest($2::text[]) AS m ORDER BY m",
            _MEMBER_LOCK,
            [str(m) for m in member_ids],
        )
        facts = await self._member_facts(conn, member_ids)
        streams = await self.store.load_many(conn, [card_stream(m) for m in member_ids])
        cards = {m: domain.fold_card(e.event for e in streams[card_stream(m)].events if e.event) for m in member_ids}
        numbers = await self._fresh_card_numbers(conn, sum(card is None for card in cards.values()))
        now = _now()
        appending: list[Appending] = []
        for entry, meta in caused:
            member_id = UUID(str(entry.data["member_id"]))
            # the member as this message left them: the facts that had arrived by its position
            member = domain.fold_member(f for f in facts[member_id] if f.arrival <= entry.position)
            card = cards[member_id]
            new_no = numbers.pop() if domain.needs_card(card, member) else None
            events = domain.follow_member(card, member_id, member, new_no, now)
            for event in events:
                card = domain.evolve_card(card, event)
            cards[member_id] = card
            if events:
                appending.append((streams[card_stream(member_id)], events, meta))
        await self.store.append_streams(conn, appending, Metadata(actor="service:servicecard"))

    # --- cards ---

    async def reissue(self, conn: asyncpg.Connection, card_no: str, reason: str, meta: Metadata) -> str:
        presented = domain.parse_card_number(card_no)
        member_id = await self._locked_owner(conn, presented)
        stream, card = await self.card(conn, member_id)
        [new_no] = await self._fresh_card_numbers(conn, 1)
        await self.store.append(conn, stream, domain.reissue(card, presented, new_no, reason, _now()), meta)
        return new_no

    # --- the catalogue ---

    async def publish_item(self, conn: asyncpg.Connection, cmd: domain.PublishItem, meta: Metadata) -> UUID:
        await self.store.append(conn, Stream(item_stream(cmd.item_id)), domain.publish_item(cmd), meta)
        return cmd.item_id

    async def withdraw_item(self, conn: asyncpg.Connection, item_id: UUID, reason: str, meta: Metadata) -> None:
        stream, item = await self.item(conn, item_id)
        await self.store.append(conn, stream, domain.withdraw_item(item, item_id, reason), meta)

    # --- redemptions ---

    async def redeem(self, conn: asyncpg.Connection, cmd: domain.Redeem, meta: Metadata) -> UUID:
        member_id = await self._locked_owner(conn, cmd.card_no)
        now = _now()
        ids = (
            card_stream(member_id),
            item_stream(cmd.item_id),
            usage_stream(member_id, cmd.item_id, domain.quota_year(now)),
        )
        streams = await self.store.load_many(conn, ids)  # the three in one read
        card = domain.fold_card(streams[ids[0]].domain_events())
        item = domain.fold_item(streams[ids[1]].domain_events())
        stream = streams[ids[2]]
        usage = domain.fold_usage(stream.domain_events())
        offered_here = True
        if item is not None and item.org_id is not None and card is not None:
            [offered_here] = await covers(conn, item.org_id, (card.org_id,))
        events = domain.redeem(card, item, usage, cmd, now, offered_here=offered_here)
        await self.store.append(conn, stream, events, meta)
        return cmd.redemption_id

    async def reverse(self, conn: asyncpg.Connection, redemption_id: UUID, reason: str, meta: Metadata) -> None:
        row = await conn.fetchrow(
            "SELECT member_id, item_id, year FROM redemptions WHERE redemption_id = $1", redemption_id
        )
        if row is None:
            raise NotFoundError("redemption", redemption_id)
        member_id, item_id, year = row["member_id"], row["item_id"], row["year"]
        await self._lock_member(conn, member_id)
        stream, usage = await self.usage(conn, member_id, item_id, year)
        events = domain.reverse(usage, redemption_id, member_id, item_id, year, reason, _now())
        await self.store.append(conn, stream, events, meta)
