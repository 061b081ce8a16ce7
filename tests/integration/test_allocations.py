"""Allocations of scarce places through the service card's API, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.servicecard import allocations, domain
from services.servicecard.events import CardIssued
from services.servicecard.handlers import card_stream
from services.servicecard.main import build_app
from services.servicecard.service import ServicecardSettings
from shared.store import Metadata, Stream
from tests.conftest import Stack
from tests.integration.conftest import MovableClock, ServiceUnderTest, serve_in_process
from tests.integration.test_servicecard import publish
from tests.support import auth
from tests.unit.test_servicecard_allocations import rerun


@pytest.fixture
async def cards(stack: Stack, unique: str, topic_prefix: str) -> AsyncIterator[ServiceUnderTest]:
    """The service card's API without its consumer, on a clock tests can move; cards are issued by the test."""
    settings = ServicecardSettings(
        database_url=stack.dsn,
        db_schema=f"c_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        run_consumers=False,
        allocation_sweep_interval=3600,
    )
    async with serve_in_process(build_app(settings)) as running:
        running.service.clock = MovableClock()
        yield running


async def issue_cards(sc: ServiceUnderTest, org_id: uuid.UUID, n: int) -> list[str]:
    """n members with active cards in `org_id`, issued in one append as membership's join would have them."""
    members = [uuid.uuid4() for _ in range(n)]
    now = datetime.now(UTC)
    batch = []
    for i, member_id in enumerate(members):
        card_no = domain.new_card_number()
        issued = CardIssued(
            member_id=member_id,
            member_no=f"310115-{i:08d}",
            card_no=card_no,
            card_no_masked=card_no[:4] + "*" * 11 + card_no[-4:],
            org_id=org_id,
            issued_at=now,
        )
        batch.append((Stream(card_stream(member_id)), [issued]))
    async with sc.service.pool.acquire() as conn, conn.transaction():
        await sc.service.store.append_streams(conn, batch, Metadata(actor="test"))
    return [str(m) for m in members]


async def open_allocation(sc: ServiceUnderTest, item: str, org: uuid.UUID, mode: str, places: int, **extra: Any) -> str:
    body = {
        "item_id": item,
        "org_id": str(org),
        "title": "职工观影券",
        "mode": mode,
        "places": places,
        "period": "2026-06-01",
        "entries_close_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        **extra,
    }
    r = await sc.post("/allocations", body)
    assert r.status_code == 201, r.text
    return str(r.json()["allocation_id"])


async def enter(sc: ServiceUnderTest, allocation_id: str, member_id: str) -> tuple[int, str]:
    """One entry, as a well-behaved client makes it: a 503 (the pool busy under a thousand requests at once) did
    nothing and says when to try again, so it is tried again."""
    headers = auth.bearer("member", member_id=member_id)
    for _ in range(20):
        r = await sc.post(f"/allocations/{allocation_id}/entries", {}, headers=headers)
        if r.status_code != 503:
            break
        await asyncio.sleep(float(r.headers["retry-after"]) / 4)
    return r.status_code, r.json().get("code", r.json().get("status", ""))


async def test_a_thousand_concurrent_entries_for_a_hundred_places_give_exactly_a_hundred(
    cards: ServiceUnderTest,
) -> None:
    org = uuid.uuid4()
    item = await publish(cards, "culture", quota=None)
    members = await issue_cards(cards, org, 400)
    # the first 50 already hold a place of this item in this period (limit 1): none of them may get another
    earlier = await open_allocation(cards, item, org, "first_come", 50)
    for member_id in members[:50]:
        assert await enter(cards, earlier, member_id) == (201, "allocated")

    allocation_id = await open_allocation(cards, item, org, "first_come", 100)
    attempts = [members[i % len(members)] for i in range(1000)]  # every member two or three times, all at once
    results = await asyncio.gather(*(enter(cards, allocation_id, m) for m in attempts))
    outcomes = Counter(code for _, code in results)
    assert outcomes["allocated"] == 100, outcomes
    assert set(outcomes) <= {"allocated", "allocation_full", "already_entered", "limit_reached"}
    async with cards.service.pool.acquire() as conn:
        placed = await conn.fetch(
            "SELECT data->>'member_id' AS member FROM events WHERE event_type = 'PlaceAllocated' "
            "AND data->>'allocation_id' = $1",
            allocation_id,
        )
        per_member = await conn.fetch(
            "SELECT data->>'member_id' AS member, count(*) AS n FROM events WHERE event_type = 'PlaceAllocated' "
            "AND data->>'item_id' = $1 AND data->>'period' = '2026-06-01' GROUP BY 1",
            item,
        )
        taken = await conn.fetchval("SELECT taken FROM allocations WHERE allocation_id = $1::uuid", allocation_id)
        granted = await conn.fetchval("SELECT count(*) FROM entitlements WHERE allocation_id = $1::uuid", allocation_id)
    winners = {r["member"] for r in placed}
    assert len(placed) == len(winners) == taken == granted == 100
    assert not winners & set(members[:50])
    assert max(r["n"] for r in per_member) == 1  # no member over the limit


async def test_a_draw_re_run_from_its_published_data_and_no_shows_banned(cards: ServiceUnderTest) -> None:
    org = uuid.uuid4()
    item = await publish(cards, "culture", quota=None)
    members = await issue_cards(cards, org, 10)
    outsider = (await issue_cards(cards, uuid.uuid4(), 1))[0]
    r = await cards.post(
        "/allocations",
        {
            "item_id": item,
            "org_id": str(org),
            "title": "暑期疗休养",
            "mode": "draw",
            "places": 3,
            "entries_close_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "entitlement_days": 2,
            "no_show_ban_days": 90,
        },
    )
    assert r.status_code == 201, r.text
    allocation_id, commitment = r.json()["allocation_id"], r.json()["seed_commitment"]
    view = (await cards.get(f"/allocations/{allocation_id}")).json()
    assert view["seed_commitment"] == commitment
    assert "seed" not in view  # committed, not revealed
    for member_id in members:
        assert await enter(cards, allocation_id, member_id) == (201, "entered")
    assert await enter(cards, allocation_id, members[0]) == (409, "already_entered")
    assert await enter(cards, allocation_id, outsider) == (409, "not_eligible")
    r = await cards.post(f"/allocations/{allocation_id}/draw")
    assert (r.status_code, r.json()["code"]) == (409, "entries_open")

    cards.service.clock.offset = timedelta(hours=2)
    assert await enter(cards, allocation_id, outsider) == (409, "allocation_closed")
    assert await cards.service.sweep_allocations() >= 3  # the sweeper holds the due draw by itself
    published = (await cards.get(f"/allocations/{allocation_id}")).json()
    r = await cards.post(f"/allocations/{allocation_id}/draw")  # held already: the same winners, nothing appended
    assert r.status_code == 200, r.text
    assert r.json()["winners"] == published["winners"]
    assert hashlib.sha256(bytes.fromhex(published["seed"])).hexdigest() == commitment
    assert published["entries"] == sorted(members)
    assert (
        hashlib.sha256("".join(f"{e}\n" for e in published["entries"]).encode()).hexdigest()
        == (published["entries_digest"])
    )
    assert published["ticket_rule"] == 2
    assert rerun(published["seed"], published["entries"], 3, published["ticket_rule"]) == published["winners"]
    tampered = [*published["entries"][1:], str(uuid.uuid4())]
    assert (
        hashlib.sha256("".join(f"{e}\n" for e in sorted(tampered)).encode()).hexdigest()
        != (published["entries_digest"])
    )

    # the winners hold entitlements; one is used in time, the others expire unused: no-shows, banned
    first, *others = published["winners"]
    held = (await cards.get(f"/members/{first}/entitlements")).json()["items"]
    [entitlement] = held
    assert entitlement["status"] == "granted"
    r = await cards.post(f"/entitlements/{entitlement['entitlement_id']}/use")
    assert r.status_code == 200, r.text
    cards.service.clock.offset = timedelta(days=3)
    assert await cards.service.sweep_allocations() == 2
    for member_id in others:
        [mine] = (await cards.get(f"/members/{member_id}/entitlements")).json()["items"]
        assert mine["status"] == "no_show"
        assert mine["banned_until"]
    later = await open_allocation(
        cards,
        item,
        org,
        "draw",
        3,
        period="2026-06-05",
        entries_close_at=(datetime.now(UTC) + timedelta(days=4)).isoformat(),
    )
    assert await enter(cards, later, others[0]) == (409, "banned")
    assert await enter(cards, later, first) == (201, "entered")


async def test_an_entry_deleted_from_the_read_model_before_the_draw_is_still_drawn(cards: ServiceUnderTest) -> None:
    """Issue 30, finding 6: the draw took its entrants from `allocation_entries`; an insider who read the seed could
    delete the row of whoever would win, and the published digest matched the reduced set. The entrants now come
    from the `AllocationEntered` events."""
    org = uuid.uuid4()
    item = await publish(cards, "culture", quota=None)
    members = await issue_cards(cards, org, 10)
    allocation_id = await open_allocation(cards, item, org, "draw", 3)
    for member_id in members:
        assert await enter(cards, allocation_id, member_id) == (201, "entered")
    async with cards.service.pool.acquire() as conn:
        seed = await conn.fetchval("SELECT seed FROM allocation_seeds WHERE allocation_id = $1::uuid", allocation_id)
        victim = allocations.draw(bytes(seed), members, 3)[0]
        await conn.execute(
            "DELETE FROM allocation_entries WHERE allocation_id = $1::uuid AND member_id = $2::uuid",
            allocation_id,
            victim,
        )
    cards.service.clock.offset = timedelta(hours=2)
    assert await cards.service.sweep_allocations() >= 3
    published = (await cards.get(f"/allocations/{allocation_id}")).json()
    assert published["entries"] == sorted(members)  # the victim is among the entrants the draw used
    assert allocations.entries_digest(members) == published["entries_digest"]
    assert rerun(published["seed"], published["entries"], 3, published["ticket_rule"]) == published["winners"]
    assert victim in published["winners"]
    [won] = (await cards.get(f"/members/{victim}/entitlements")).json()["items"]
    assert won["allocation_id"] == allocation_id
