"""Allocations' rules and the draw anyone can re-run."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.servicecard import allocations
from services.servicecard.allocations import Entitlements, Entrant, Entries, Mode
from services.servicecard.events import DrawHeld, EntitlementGranted, EntitlementNoShow, PlaceAllocated
from shared.errors import DomainError

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)
ITEM, ORG = uuid.uuid4(), uuid.uuid4()


def rerun(seed_hex: str, entries: list[str], places: int, ticket_rule: int = 2) -> list[str]:
    """The documented algorithm written out again, from docs/allocations.md: rule 2 (since issue 30) hashes the seed
    and the entry; rule 1 (draws held before) also hashed the digest of all entries into every ticket."""
    digest = hashlib.sha256("".join(f"{e}\n" for e in sorted(entries)).encode()).digest()
    seed = bytes.fromhex(seed_hex)
    mixed = seed + digest if ticket_rule == 1 else seed
    ranked = sorted(entries, key=lambda e: (hashlib.sha256(mixed + e.encode()).digest(), e))
    return ranked[:places]


def opened(mode: Mode, places: int = 2, limit: int = 1, seed: bytes = b"s" * 32) -> allocations.Allocation:
    cmd = allocations.OpenAllocation(
        uuid.uuid4(), ITEM, ORG, "海南观影券", mode, places, "2026-06-01", limit, NOW + timedelta(hours=1), 3, 90
    )
    state = allocations.fold_allocation(allocations.open_allocation(cmd, NOW, item_known=True, seed=seed))
    assert state is not None
    return state


def member() -> Entrant:
    return Entrant(uuid.uuid4(), card_active=True, in_subtree=True)


def test_a_draw_is_re_run_from_its_published_seed_and_entries_and_a_changed_entry_is_detected() -> None:
    seed = os.urandom(32)
    allocation = opened(Mode.DRAW, places=3, seed=seed)
    assert allocation.seed_commitment == hashlib.sha256(seed).hexdigest()  # published before any entry
    entries = [uuid.uuid4() for _ in range(20)]
    with pytest.raises(DomainError, match="once entries close"):
        allocations.hold_draw(allocation, allocation.allocation_id, NOW, seed=seed, entries=entries, entitlement_ids=[])
    later = NOW + timedelta(hours=2)
    held, grants = allocations.hold_draw(
        allocation, allocation.allocation_id, later, seed=seed, entries=entries, entitlement_ids=[uuid.uuid4()] * 3
    )
    published = sorted(str(e) for e in entries)
    # anyone: the seed matches the commitment, the entries the digest, and the draw the winners
    assert hashlib.sha256(bytes.fromhex(held.seed)).hexdigest() == held.seed_commitment
    assert hashlib.sha256("".join(f"{e}\n" for e in published).encode()).hexdigest() == held.entries_digest
    assert held.ticket_rule == 2
    assert rerun(held.seed, published, 3, held.ticket_rule) == [str(w) for w in held.winners]
    assert [g.member_id for g in grants] == list(held.winners)
    assert all(g.expires_at == later + timedelta(days=3) for g in grants)
    # one entry changed after the commit: the digest no longer matches
    changed = [*published[:-1], str(uuid.uuid4())]
    assert allocations.entries_digest(changed) != held.entries_digest
    # and a different seed cannot be passed off as the committed one
    with pytest.raises(ValueError, match="committed"):
        allocations.hold_draw(
            allocation, allocation.allocation_id, later, seed=b"x" * 32, entries=entries, entitlement_ids=[]
        )


def test_the_draw_is_a_function_of_the_set_of_entries_not_their_order() -> None:
    entries = [str(uuid.uuid4()) for _ in range(50)]
    seed = os.urandom(32)
    assert allocations.draw(seed, entries, 5) == allocations.draw(seed, list(reversed(entries)), 5)
    assert allocations.draw(seed, entries, 5) == rerun(seed.hex(), entries, 5)
    assert len(set(allocations.draw(seed, entries, 60))) == 50


def test_whoever_reads_the_seed_cannot_reorder_the_others_by_choosing_which_members_to_enter() -> None:
    """Issue 30, finding 5: the seed sits in `allocation_seeds` until the draw. With every ticket hashing the digest
    of all entries, whoever read it could try subsets of the members they control until the draw suited them (2^8
    tries with 8). Now a ticket is the seed and the entry alone: entering or not changes nobody else's ticket."""
    seed = hashlib.sha256(b"read from allocation_seeds before entries close").digest()
    honest = [str(uuid.UUID(int=i)) for i in range(1, 21)]
    controlled = [str(uuid.UUID(int=1000 + i)) for i in range(8)]
    alone = allocations.draw(seed, honest, len(honest))
    orders = set()
    for subset in range(1 << len(controlled)):
        entered = [m for i, m in enumerate(controlled) if subset >> i & 1]
        ranking = allocations.draw(seed, honest + entered, len(honest) + len(entered))
        orders.add(tuple(e for e in ranking if e in honest))
    assert orders == {tuple(alone)}  # one order of the honest entrants, whatever subset was entered
    # so the most a reader of the seed can do is enter the members whose own tickets are good (the commit-and-reveal
    # seed of a later part of issue 30 takes that away too)
    winners = allocations.draw(seed, honest + controlled, 3)
    assert [w for w in winners if w in honest] == alone[: len([w for w in winners if w in honest])]


def test_a_draw_held_under_the_first_ticket_rule_still_re_runs_by_its_recorded_rule() -> None:
    seed = os.urandom(32)
    entries = sorted(str(uuid.uuid4()) for _ in range(30))
    old_winners = rerun(seed.hex(), entries, 4, ticket_rule=1)
    payload = {  # a DrawHeld as published before issue 30: no ticket_rule
        "allocation_id": str(uuid.uuid4()),
        "seed": seed.hex(),
        "seed_commitment": hashlib.sha256(seed).hexdigest(),
        "entries": len(entries),
        "entries_digest": allocations.entries_digest(entries),
        "winners": old_winners,
    }
    held = DrawHeld.model_validate(payload)
    assert held.ticket_rule == 1
    assert allocations.draw(seed, entries, 4, held.ticket_rule) == old_winners
    assert allocations.draw(seed, entries, 4) == rerun(seed.hex(), entries, 4, ticket_rule=2) != old_winners


def test_first_come_gives_the_places_and_then_refuses() -> None:
    allocation = opened(Mode.FIRST_COME, places=2)
    entrant = member()
    events = allocations.enter(
        allocation,
        allocation.allocation_id,
        entrant,
        Entries(),
        Entitlements(),
        NOW,
        places_taken=1,
        entitlement_id=uuid.uuid4(),
    )
    assert [type(e) for e in events] == [PlaceAllocated, EntitlementGranted]
    with pytest.raises(DomainError) as full:
        allocations.enter(
            allocation,
            allocation.allocation_id,
            member(),
            Entries(),
            Entitlements(),
            NOW,
            places_taken=2,
            entitlement_id=uuid.uuid4(),
        )
    assert full.value.code == "allocation_full"


def test_limits_per_member_and_period_eligibility_and_the_window() -> None:
    allocation = opened(Mode.DRAW, limit=2)
    entrant = member()
    enter = lambda entries, who=entrant, now=NOW: allocations.enter(  # noqa: E731
        allocation,
        allocation.allocation_id,
        who,
        entries,
        Entitlements(),
        now,
        places_taken=0,
        entitlement_id=uuid.uuid4(),
    )
    assert enter(Entries(frozenset({uuid.uuid4()})))  # a second entry this period for this item
    for entries, who, now, code in [
        (Entries(frozenset({uuid.uuid4(), uuid.uuid4()})), entrant, NOW, "limit_reached"),
        (Entries(frozenset({allocation.allocation_id})), entrant, NOW, "already_entered"),
        (Entries(), Entrant(entrant.member_id, card_active=False, in_subtree=True), NOW, "card_not_active"),
        (Entries(), Entrant(entrant.member_id, card_active=True, in_subtree=False), NOW, "not_eligible"),
        (Entries(), entrant, NOW + timedelta(hours=1), "allocation_closed"),
    ]:
        with pytest.raises(DomainError) as refused:
            enter(entries, who, now)
        assert refused.value.code == code


def test_an_unused_win_is_a_no_show_that_bans_later_entries() -> None:
    allocation = opened(Mode.FIRST_COME, places=5)
    entrant = member()
    entitlement_id = uuid.uuid4()
    _, granted = allocations.enter(
        allocation,
        allocation.allocation_id,
        entrant,
        Entries(),
        Entitlements(),
        NOW,
        places_taken=0,
        entitlement_id=entitlement_id,
    )
    held = allocations.fold_entitlements([granted])
    assert allocations.record_no_shows(held, entrant.member_id, NOW + timedelta(days=2)) == []
    [no_show] = allocations.record_no_shows(held, entrant.member_id, NOW + timedelta(days=3))
    assert isinstance(no_show, EntitlementNoShow)
    assert no_show.banned_until == NOW + timedelta(days=3 + 90)
    held = allocations.fold_entitlements([granted, no_show])
    with pytest.raises(DomainError) as spent:
        allocations.use_entitlement(held, entrant.member_id, entitlement_id, NOW)
    assert spent.value.code == "entitlement_spent"
    later = opened(Mode.DRAW)
    with pytest.raises(DomainError) as banned:
        allocations.enter(
            later, later.allocation_id, entrant, Entries(), held, NOW, places_taken=0, entitlement_id=uuid.uuid4()
        )
    assert banned.value.code == "banned"
    # a win used in time is no no-show
    used = allocations.use_entitlement(allocations.fold_entitlements([granted]), entrant.member_id, entitlement_id, NOW)
    assert (
        allocations.record_no_shows(
            allocations.fold_entitlements([granted, *used]), entrant.member_id, NOW + timedelta(days=9)
        )
        == []
    )
