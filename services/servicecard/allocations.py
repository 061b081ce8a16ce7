"""Allocations of scarce places (抽签、限额) as deciders, and the draw anyone can re-run.

An allocation offers `places` of a catalogue item to the members of an organisation's subtree, either first come
(先到先得: a place is given at once while places remain) or by a draw (抽签). Each member may enter at most
`limit_per_member` allocations of the same item in the same period (so wins are bounded too). A win is an
entitlement on the member's card, redeemable until it expires; an entitlement left unused is a no-show, which bans
the member from that item's allocations for `no_show_ban_days`.

The draw, which anyone can re-run from the published data (docs/allocations.md):

    entries          the entrants' member ids as lowercase UUID strings, sorted (from the AllocationEntered events)
    entries_digest   SHA-256 of the entries, each followed by a newline ("\\n"), as hex
    seed             32 random bytes, committed as SHA-256(seed) (hex) when the allocation opens, revealed after
    ticket(entry)    rule 2: SHA-256(seed || entry as UTF-8)
                     rule 1 (draws held before issue 30): SHA-256(seed || bytes.fromhex(entries_digest) || entry)
    winners          the first `places` entries in ascending order of (ticket, entry)

The seed's commitment is published before any entry exists, so whoever holds the seed cannot pick it after seeing
the entries. A ticket depends on the seed and its own entry only: entering or not changes nobody else's ticket, so
whoever learns the seed early cannot try subsets of the members they control until the ranking suits them (rule 1
mixed the digest of all entries into every ticket, which let every subset reshuffle everyone). The digest binds the
set of entries in the published DrawHeld. A seed agreed later among several tellers (commit and reveal) would slot
in as `seed` without changing the ticket rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from services.servicecard.events import (
    AllocationEntered,
    AllocationOpened,
    DrawHeld,
    EntitlementGranted,
    EntitlementNoShow,
    EntitlementUsed,
    PlaceAllocated,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent

SEED_BYTES = 32
TICKET_RULE = 2  # what new draws use and record in DrawHeld; 1 is kept to re-run the draws held under it


class Mode(StrEnum):
    DRAW = "draw"
    FIRST_COME = "first_come"


# --- the draw ------------------------------------------------------------------------------------------


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def entries_digest(entries: Iterable[str]) -> str:
    return hashlib.sha256("".join(f"{e}\n" for e in sorted(entries)).encode()).hexdigest()


def ticket(seed: bytes, entry: str, digest: bytes, ticket_rule: int) -> bytes:
    if ticket_rule == 1:
        return hashlib.sha256(seed + digest + entry.encode()).digest()
    if ticket_rule == TICKET_RULE:
        return hashlib.sha256(seed + entry.encode()).digest()
    raise ValueError(f"no ticket rule {ticket_rule}")


def draw(seed: bytes, entries: Iterable[str], places: int, ticket_rule: int = TICKET_RULE) -> list[str]:
    """The winners, best ticket first: a pure function of the seed, the set of entries, the places and the rule."""
    ordered = sorted(set(entries))
    digest = bytes.fromhex(entries_digest(ordered)) if ticket_rule == 1 else b""
    tickets = sorted((ticket(seed, e, digest, ticket_rule), e) for e in ordered)
    return [e for _, e in tickets[:places]]


# --- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    allocation_id: UUID
    item_id: UUID
    org_id: UUID
    mode: Mode
    places: int
    period: str
    limit_per_member: int
    entries_close_at: datetime
    entitlement_days: int
    no_show_ban_days: int
    seed_commitment: str
    drawn: DrawHeld | None = None


def fold_allocation(events: Iterable[DomainEvent]) -> Allocation | None:
    state: Allocation | None = None
    for event in events:
        match event:
            case AllocationOpened():
                state = Allocation(
                    event.allocation_id,
                    event.item_id,
                    event.org_id,
                    Mode(event.mode),
                    event.places,
                    event.period,
                    event.limit_per_member,
                    event.entries_close_at,
                    event.entitlement_days,
                    event.no_show_ban_days,
                    event.seed_commitment,
                )
            case DrawHeld() if state is not None:
                state = replace(state, drawn=event)
    return state


@dataclass(frozen=True)
class Entries:
    """A member's entries for one item in one period."""

    allocations: frozenset[UUID] = frozenset()


def fold_entries(events: Iterable[DomainEvent]) -> Entries:
    entered: set[UUID] = set()
    for event in events:
        if isinstance(event, AllocationEntered | PlaceAllocated):
            entered.add(event.allocation_id)
    return Entries(frozenset(entered))


@dataclass(frozen=True)
class Entitlement:
    entitlement_id: UUID
    item_id: UUID
    expires_at: datetime
    no_show_ban_days: int
    status: str = "granted"  # granted | used | no_show


@dataclass(frozen=True)
class Entitlements:
    """A member's entitlements and the bans their no-shows earned, by item."""

    items: tuple[Entitlement, ...] = ()
    banned_until: tuple[tuple[UUID, datetime], ...] = ()

    def ban_on(self, item_id: UUID, now: datetime) -> datetime | None:
        bans = [until for item, until in self.banned_until if item == item_id and until > now]
        return max(bans) if bans else None

    def get(self, entitlement_id: UUID) -> Entitlement | None:
        return next((e for e in self.items if e.entitlement_id == entitlement_id), None)


def fold_entitlements(events: Iterable[DomainEvent]) -> Entitlements:
    state = Entitlements()
    for event in events:
        match event:
            case EntitlementGranted():
                granted = Entitlement(event.entitlement_id, event.item_id, event.expires_at, event.no_show_ban_days)
                state = replace(state, items=(*state.items, granted))
            case EntitlementUsed():
                state = _set(state, event.entitlement_id, "used")
            case EntitlementNoShow():
                state = _set(state, event.entitlement_id, "no_show")
                state = replace(state, banned_until=(*state.banned_until, (event.item_id, event.banned_until)))
    return state


def _set(state: Entitlements, entitlement_id: UUID, status: str) -> Entitlements:
    items = tuple(replace(e, status=status) if e.entitlement_id == entitlement_id else e for e in state.items)
    return replace(state, items=items)


# --- commands ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAllocation:
    allocation_id: UUID
    item_id: UUID
    org_id: UUID
    title: str
    mode: Mode
    places: int
    period: str
    limit_per_member: int
    entries_close_at: datetime
    entitlement_days: int
    no_show_ban_days: int


def open_allocation(cmd: OpenAllocation, now: datetime, *, item_known: bool, seed: bytes) -> list[DomainEvent]:
    if not item_known:
        raise NotFoundError("item", cmd.item_id)
    if cmd.entries_close_at <= now:
        raise InvalidInputError("entries_close_at", "entries must close in the future")
    if cmd.places < 1 or cmd.limit_per_member < 1 or cmd.entitlement_days < 1 or cmd.no_show_ban_days < 0:
        raise InvalidInputError("places", "places, the limit and the entitlement's days are at least 1")
    if len(seed) != SEED_BYTES:
        raise ValueError("a draw's seed is 32 random bytes")
    return [
        AllocationOpened(
            allocation_id=cmd.allocation_id,
            item_id=cmd.item_id,
            org_id=cmd.org_id,
            title=cmd.title,
            mode=cmd.mode,
            places=cmd.places,
            period=cmd.period,
            limit_per_member=cmd.limit_per_member,
            entries_close_at=cmd.entries_close_at,
            entitlement_days=cmd.entitlement_days,
            no_show_ban_days=cmd.no_show_ban_days,
            seed_commitment=commitment(seed) if cmd.mode is Mode.DRAW else "",
        )
    ]


@dataclass(frozen=True)
class Entrant:
    """What the entry needs to know of the member: their card is active and in the allocation's subtree."""

    member_id: UUID
    card_active: bool
    in_subtree: bool


def _may_enter(
    allocation: Allocation, entrant: Entrant, entries: Entries, entitlements: Entitlements, now: datetime
) -> None:
    if now >= allocation.entries_close_at or allocation.drawn is not None:
        raise DomainError("allocation_closed", "entries to this allocation are closed")
    if not entrant.card_active:
        raise DomainError("card_not_active", "only a member with an active card may enter")
    if not entrant.in_subtree:
        raise DomainError("not_eligible", "this allocation is for the members of another organisation")
    if allocation.allocation_id in entries.allocations:
        raise DomainError("already_entered", "a member enters an allocation once")
    if (until := entitlements.ban_on(allocation.item_id, now)) is not None:
        raise DomainError("banned", f"a win left unused bans this member from this item until {until.isoformat()}")
    if len(entries.allocations) >= allocation.limit_per_member:
        raise DomainError(
            "limit_reached", f"at most {allocation.limit_per_member} per member in {allocation.period} for this item"
        )


def enter(
    allocation: Allocation | None,
    allocation_id: UUID,
    entrant: Entrant,
    entries: Entries,
    entitlements: Entitlements,
    now: datetime,
    *,
    places_taken: int,
    entitlement_id: UUID,
) -> list[DomainEvent]:
    """An entry to a draw, or a first-come place with its entitlement while `places_taken` < places."""
    if allocation is None:
        raise NotFoundError("allocation", allocation_id)
    _may_enter(allocation, entrant, entries, entitlements, now)
    if allocation.mode is Mode.DRAW:
        return [
            AllocationEntered(
                allocation_id=allocation.allocation_id,
                member_id=entrant.member_id,
                item_id=allocation.item_id,
                period=allocation.period,
            )
        ]
    if places_taken >= allocation.places:
        raise DomainError("allocation_full", "every place of this allocation is taken")
    return [
        PlaceAllocated(
            allocation_id=allocation.allocation_id,
            member_id=entrant.member_id,
            item_id=allocation.item_id,
            period=allocation.period,
            entitlement_id=entitlement_id,
        ),
        _grant(allocation, entrant.member_id, entitlement_id, now),
    ]


def _grant(allocation: Allocation, member_id: UUID, entitlement_id: UUID, now: datetime) -> EntitlementGranted:
    return EntitlementGranted(
        entitlement_id=entitlement_id,
        member_id=member_id,
        allocation_id=allocation.allocation_id,
        item_id=allocation.item_id,
        expires_at=now + timedelta(days=allocation.entitlement_days),
        no_show_ban_days=allocation.no_show_ban_days,
    )


def hold_draw(
    allocation: Allocation | None,
    allocation_id: UUID,
    now: datetime,
    *,
    seed: bytes,
    entries: Sequence[UUID],
    entitlement_ids: Sequence[UUID],
) -> tuple[DrawHeld, list[EntitlementGranted]]:
    """After entries close: reveal the seed, draw, and grant the winners their entitlements (`entitlement_ids`
    are fresh ids, one per place)."""
    if allocation is None:
        raise NotFoundError("allocation", allocation_id)
    if allocation.mode is not Mode.DRAW:
        raise DomainError("not_a_draw", "a first-come allocation gives its places as members enter")
    if allocation.drawn is not None:
        raise DomainError("already_drawn", "the draw was held")
    if now < allocation.entries_close_at:
        raise DomainError("entries_open", "the draw is held once entries close")
    if commitment(seed) != allocation.seed_commitment:
        raise ValueError("the seed is not the one committed to")
    names = [str(e) for e in entries]
    winners = [UUID(w) for w in draw(seed, names, allocation.places, TICKET_RULE)]
    held = DrawHeld(
        allocation_id=allocation.allocation_id,
        seed=seed.hex(),
        seed_commitment=allocation.seed_commitment,
        entries=len(set(names)),
        entries_digest=entries_digest(set(names)),
        winners=tuple(winners),
        ticket_rule=TICKET_RULE,
    )
    return held, [_grant(allocation, w, e, now) for w, e in zip(winners, entitlement_ids, strict=False)]


def use_entitlement(
    entitlements: Entitlements, member_id: UUID, entitlement_id: UUID, now: datetime
) -> list[DomainEvent]:
    entitlement = entitlements.get(entitlement_id)
    if entitlement is None:
        raise NotFoundError("entitlement", entitlement_id)
    if entitlement.status != "granted":
        raise DomainError("entitlement_spent", f"the entitlement is {entitlement.status}")
    if now >= entitlement.expires_at:
        raise DomainError("entitlement_expired", "the entitlement expired")
    return [
        EntitlementUsed(entitlement_id=entitlement_id, member_id=member_id, item_id=entitlement.item_id, used_at=now)
    ]


def record_no_shows(entitlements: Entitlements, member_id: UUID, now: datetime) -> list[DomainEvent]:
    """Every entitlement left unused past its expiry becomes a no-show with its ban."""
    return [
        EntitlementNoShow(
            entitlement_id=e.entitlement_id,
            member_id=member_id,
            item_id=e.item_id,
            expired_at=e.expires_at,
            banned_until=e.expires_at + timedelta(days=e.no_show_ban_days),
        )
        for e in entitlements.items
        if e.status == "granted" and e.expires_at <= now
    ]
