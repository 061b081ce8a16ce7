"""The service card through its HTTP API, fed by the real membership service over the real broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from stdnum.luhn import calc_check_digit as luhn_check_digit
from stdnum.luhn import is_valid as is_luhn_valid

from services.servicecard.domain import quota_year, usage_month
from services.servicecard.main import build_app
from services.servicecard.service import ServicecardSettings
from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.support import data
from tests.support.kafka import produce
from tests.support.waiting import eventually

TIMEOUT = 30.0


@pytest.fixture
def servicecard_settings(stack: Stack, unique: str, topic_prefix: str) -> ServicecardSettings:
    return ServicecardSettings(
        database_url=stack.dsn,
        db_schema=f"c_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        relay_poll_interval=0.05,
        run_consumers=True,
    )


@pytest.fixture
async def servicecard(
    servicecard_settings: ServicecardSettings, all_topics: list[str]
) -> AsyncIterator[ServiceUnderTest]:
    """The service card in this process, consuming membership's topic."""
    async with serve_in_process(build_app(servicecard_settings)) as running:
        yield running


@pytest.fixture
async def catalogue(servicecard_settings: ServicecardSettings) -> AsyncIterator[ServiceUnderTest]:
    """The service card's API alone, for what needs no member: no consumer, no broker round trip."""
    settings = servicecard_settings.model_copy(update={"run_consumers": False})
    async with serve_in_process(build_app(settings)) as running:
        yield running


# --- helpers ---


async def card_of(sc: ServiceUnderTest, member_id: str, status: str = "active", **fields: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await sc.get(f"/members/{member_id}/card")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        wanted = {"status": status, **fields}
        return body if all(body[k] == v for k, v in wanted.items()) else None

    result: dict[str, Any] = await eventually(probe, f"member {member_id}'s card to be {status} {fields}")
    return result


async def make_org(m: ServiceUnderTest, type_: str = "township", parent: str | None = None, **extra: object) -> str:
    r = await m.post(
        "/organizations",
        {"name": f"{type_} union", "type": type_, "region_code": "310115", "parent_id": parent, **extra},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["org_id"])


async def tree(m: ServiceUnderTest) -> dict[str, str]:
    county = await make_org(m, "county")
    return {
        "county": county,
        "township": await make_org(m, "township", county),
        "sibling": await make_org(m, "township", county),
    }


async def join(m: ServiceUnderTest, org_id: str) -> str:
    r = await m.post("/applications", data.application(org_id))
    assert r.status_code == 201, r.text
    r = await m.post(f"/applications/{r.json()['application_id']}/approve", {"reviewer": "staff-1"})
    assert r.status_code == 200, r.text
    return str(r.json()["member_id"])


def service_point(**overrides: object) -> dict[str, object]:
    point: dict[str, object] = {
        "name": "浦东新区职工服务中心",
        "address": "上海市浦东新区世纪大道1号",
        "phone": "021-12345678",
        "opening_hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "opens": "09:00", "closes": "17:00"}],
        "off_peak_hours": [
            {"days": ["tue", "thu"], "opens": "18:00", "closes": "21:00"},
            {"days": ["sat"], "opens": "09:00", "closes": "12:00"},
        ],
    }
    point.update(overrides)
    return point


def item_body(category: str = "legal_aid", quota: int | None = 1, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": f"{category} service",
        "category": category,
        "provider": "浦东法律援助中心",
        "standard": "劳动争议咨询，一次不少于30分钟",
        "service_points": [service_point()],
    }
    if quota is not None:
        body["quota_per_year"] = quota
    body.update(overrides)
    return body


async def publish(sc: ServiceUnderTest, category: str = "legal_aid", quota: int | None = 1) -> str:
    r = await sc.post("/catalog/items", item_body(category, quota))
    assert r.status_code == 201, r.text
    return str(r.json()["item_id"])


async def redeem(sc: ServiceUnderTest, card_no: str, item_id: str, **extra: Any) -> httpx.Response:
    headers = {"Idempotency-Key": extra.pop("key")} if "key" in extra else {}
    return await sc.post(f"/cards/{card_no}/redemptions", {"item_id": item_id, **extra}, headers=headers)


def outcome(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json().get("code", "")


async def benefit(sc: ServiceUnderTest, member_id: str, item_id: str) -> dict[str, Any]:
    r = await sc.get(f"/members/{member_id}/benefits")
    assert r.status_code == 200, r.text
    [entry] = [i for i in r.json()["items"] if i["item_id"] == item_id]
    return {k: entry[k] for k in ("used", "remaining")}


def member_event(
    member_id: uuid.UUID, name: str, sequence: int, **fields: object
) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
    """A membership event on the wire, as membership's relay would publish it."""
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/union/membership",
        type=f"union.membership.{name}.v1",
        subject=f"member-{member_id}",
        time=datetime.now(UTC),
        partitionkey=str(member_id),
        sequence=str(sequence),
        data={"member_id": str(member_id), **fields},
    )
    return envelope.to_kafka()


def joined(member_id: uuid.UUID, org_id: uuid.UUID) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
    return member_event(
        member_id,
        "MemberJoined",
        1,
        member_no="310115-09999999",
        org_id=str(org_id),
        joined_at=datetime.now(UTC).date().isoformat(),
        employment_type="platform",
        household_type="rural",
        employer_credit_code=None,
        employer_name=None,
        id_blind_index="b" * 64,
    )


# --- cards follow the member ---


async def test_a_card_is_issued_on_joining_and_follows_the_membership(
    membership: ServiceUnderTest,
    servicecard: ServiceUnderTest,
) -> None:
    orgs = await tree(membership)
    member_id = await join(membership, orgs["township"])
    card = await card_of(servicecard, member_id)
    card_no = card["card_no"]
    assert len(card_no) == 19
    assert card_no.isdigit()
    assert is_luhn_valid(card_no)
    assert card["org_id"] == orgs["township"]
    assert datetime.fromisoformat(card["issued_at"]) <= datetime.now(UTC)
    assert (await servicecard.get(f"/cards/{card_no}")).json()["member_id"] == member_id
    item = await publish(servicecard, "culture", quota=None)

    await membership.post(f"/members/{member_id}/suspend", {"reason": "arrears"})
    await card_of(servicecard, member_id, "frozen", card_no=card_no)
    assert outcome(await redeem(servicecard, card_no, item)) == (409, "card_not_active")

    await membership.post(f"/members/{member_id}/reinstate", {"reason": "paid"})
    await card_of(servicecard, member_id, "active", card_no=card_no)
    assert (await redeem(servicecard, card_no, item)).status_code == 201

    await membership.post(f"/members/{member_id}/terminate", {"reason": "withdrew"})
    await card_of(servicecard, member_id, "revoked", card_no=card_no)
    assert outcome(await redeem(servicecard, card_no, item)) == (409, "card_not_active")
    r = await servicecard.post(f"/cards/{card_no}/reissue", {"reason": "lost"})
    assert outcome(r) == (409, "card_not_active")
    assert (await servicecard.get(f"/members/{uuid.uuid4()}/card")).status_code == 404


async def test_member_events_consumed_before_the_join_are_not_lost(
    servicecard: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    topic = topic_prefix + "union.membership.v1"
    suspended, moved, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    org, new_org = uuid.uuid4(), uuid.uuid4()
    early = [
        member_event(suspended, "MemberSuspended", 2, reason="arrears"),
        member_event(moved, "MemberOrganizationChanged", 2, from_org_id=str(org), to_org_id=str(new_org)),
        member_event(gone, "MemberTerminated", 2, reason="withdrew"),
    ]
    await produce(stack.bootstrap, topic, early)

    async def consumed() -> bool:
        async with servicecard.service.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM inbox") == len(early))

    await eventually(consumed, "the early events to be consumed")
    for member_id in (suspended, moved, gone):
        assert (await servicecard.get(f"/members/{member_id}/card")).status_code == 404

    late_join = joined(suspended, org)
    await produce(stack.bootstrap, topic, [late_join, joined(moved, org), joined(gone, org), late_join])
    card = await card_of(servicecard, str(suspended), "frozen", org_id=str(org))
    await card_of(servicecard, str(moved), "active", org_id=str(new_org))
    await card_of(servicecard, str(gone), "revoked")

    await produce(stack.bootstrap, topic, [member_event(suspended, "MemberReinstated", 3, reason="paid")])
    assert (await card_of(servicecard, str(suspended), "active"))["card_no"] == card["card_no"]
    async with servicecard.service.pool.acquire() as conn:  # the redelivered join issued no second card
        assert await conn.fetchval("SELECT count(*) FROM cards WHERE member_id = $1", suspended) == 1


async def test_the_card_follows_a_transfer_and_the_dossier_shows_card_events(
    membership_consuming: ServiceUnderTest,
    servicecard: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    orgs = await tree(membership_consuming)
    member_id = await join(membership_consuming, orgs["township"])
    card_no = (await card_of(servicecard, member_id))["card_no"]
    item = await publish(servicecard, "training", quota=3)
    assert (await redeem(servicecard, card_no, item)).status_code == 201

    # the transfer saga completes: membership moves the member, and the card follows membership
    completed = Envelope(
        id=uuid.uuid4(),
        source="/union/transfer",
        type="union.transfer.TransferCompleted.v1",
        subject=f"transfer-{uuid.uuid4()}",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={
            "transfer_id": str(uuid.uuid4()),
            "member_id": member_id,
            "from_org_id": orgs["township"],
            "to_org_id": orgs["sibling"],
        },
    )
    await produce(stack.bootstrap, topic_prefix + "union.transfer.v1", [completed.to_kafka()])
    await card_of(servicecard, member_id, "active", org_id=orgs["sibling"], card_no=card_no)

    async def dossier() -> list[dict[str, Any]] | None:
        r = await membership_consuming.get(f"/members/{member_id}/history")
        events: list[dict[str, Any]] = r.json()["events"]
        return events if "CardOrganizationChanged" in {e["event"] for e in events} else None

    history = await eventually(dossier, "the card's events in the member's dossier")
    card_events = [e for e in history if e["source"] == "/union/servicecard"]
    assert [e["event"] for e in card_events] == ["CardIssued", "BenefitRedeemed", "CardOrganizationChanged"]
    assert [e["event"] for e in history].index("MemberJoined") < [e["event"] for e in history].index("CardIssued")
    assert card_events[1]["data"]["item_id"] == item
    assert card_events[1]["data"]["card_no_masked"].endswith(card_no[-4:])
    assert card_no not in json.dumps(history)  # the full number never leaves the service


# --- redemptions and quotas ---


async def test_parallel_redemptions_of_a_quota_one_item_succeed_once(
    membership: ServiceUnderTest,
    servicecard: ServiceUnderTest,
) -> None:
    orgs = await tree(membership)
    member_id = await join(membership, orgs["township"])
    card_no = (await card_of(servicecard, member_id))["card_no"]
    # open enough connections first, so the eight requests really run side by side
    await asyncio.gather(*(servicecard.get(f"/members/{member_id}/benefits") for _ in range(8)))
    for _ in range(3):
        item = await publish(servicecard, "hardship", quota=1)
        results = await asyncio.gather(*(redeem(servicecard, card_no, item) for _ in range(8)))
        assert sorted(outcome(r) for r in results) == [(201, ""), *[(409, "quota_exhausted")] * 7]
        assert await benefit(servicecard, member_id, item) == {"used": 1, "remaining": 0}

    # a client retrying one redemption with its Idempotency-Key spends once, even when retries race
    other = await publish(servicecard, "medical", quota=5)
    retries = await asyncio.gather(*(redeem(servicecard, card_no, other, units=2, key="redeem-1") for _ in range(4)))
    assert {r.status_code for r in retries} == {201}
    assert len({r.json()["redemption_id"] for r in retries}) == 1
    assert await benefit(servicecard, member_id, other) == {"used": 2, "remaining": 3}
    r = await redeem(servicecard, card_no, other, units=1, key="redeem-1")
    assert outcome(r) == (422, "idempotency_key_reused")


async def test_a_reissued_card_keeps_the_usage_and_a_reversal_gives_the_quota_back(
    membership: ServiceUnderTest,
    servicecard: ServiceUnderTest,
) -> None:
    orgs = await tree(membership)
    member_id = await join(membership, orgs["township"])
    old_no = (await card_of(servicecard, member_id))["card_no"]
    legal = await publish(servicecard, "legal_aid", quota=2)
    assert (await redeem(servicecard, old_no, legal, provider_ref="R-1")).status_code == 201

    r = await servicecard.post(f"/cards/{old_no}/reissue", {"reason": "lost"})
    assert r.status_code == 200, r.text
    new_no = r.json()["card_no"]
    assert new_no != old_no
    assert is_luhn_valid(new_no)
    card = (await servicecard.get(f"/members/{member_id}/card")).json()
    assert (card["card_no"], card["status"], card["org_id"]) == (new_no, "active", orgs["township"])
    old = (await servicecard.get(f"/cards/{old_no}")).json()
    assert (old["status"], old["replaced_by"]) == ("revoked", new_no)
    assert outcome(await redeem(servicecard, old_no, legal)) == (409, "card_not_active")
    assert outcome(await servicecard.post(f"/cards/{old_no}/reissue", {"reason": "again"})) == (409, "card_not_active")

    second = await redeem(servicecard, new_no, legal)
    assert second.status_code == 201
    assert outcome(await redeem(servicecard, new_no, legal)) == (409, "quota_exhausted")  # 1 on each card: 2 of 2

    redemption_id = second.json()["redemption_id"]
    r = await servicecard.post(f"/redemptions/{redemption_id}/reverse", {"reason": "service not given"})
    assert r.status_code == 200, r.text
    assert (await servicecard.get(f"/redemptions/{redemption_id}")).json()["status"] == "reversed"
    r = await servicecard.post(f"/redemptions/{redemption_id}/reverse", {"reason": "again"})
    assert outcome(r) == (409, "already_reversed")
    assert await benefit(servicecard, member_id, legal) == {"used": 1, "remaining": 1}
    assert (await redeem(servicecard, new_no, legal)).status_code == 201
    assert await benefit(servicecard, member_id, legal) == {"used": 2, "remaining": 0}

    assert outcome(await redeem(servicecard, new_no, str(uuid.uuid4()))) == (404, "item_not_found")
    assert outcome(await servicecard.post(f"/redemptions/{uuid.uuid4()}/reverse", {"reason": "x"})) == (
        404,
        "redemption_not_found",
    )
    withdrawn = await publish(servicecard, "employment", quota=None)
    await servicecard.post(f"/catalog/items/{withdrawn}/withdraw", {"reason": "provider left"})
    assert outcome(await redeem(servicecard, new_no, withdrawn)) == (409, "item_withdrawn")

    # the read models are derived: rebuilt from the log, they come out the same
    views = [
        f"/members/{member_id}/card",
        f"/cards/{old_no}",
        f"/members/{member_id}/benefits",
        f"/redemptions/{redemption_id}",
        "/catalog/items?include_withdrawn=true",
    ]
    before = [(await servicecard.get(v)).json() for v in views]
    for projection in ("cards", "catalog", "redemptions"):
        assert await servicecard.service.runtime.projections.rebuild(projection) > 0
    assert [(await servicecard.get(v)).json() for v in views] == before


async def test_benefits_and_usage_statistics(membership: ServiceUnderTest, servicecard: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    members = [
        await join(membership, orgs["township"]),
        await join(membership, orgs["township"]),
        await join(membership, orgs["sibling"]),
    ]
    cards = [(await card_of(servicecard, m))["card_no"] for m in members]
    legal, medical, culture = (
        await publish(servicecard, "legal_aid", 3),
        await publish(servicecard, "medical", 2),
        await publish(servicecard, "culture", None),
    )
    spends = [(0, legal, 1), (0, legal, 1), (0, medical, 2), (1, legal, 1), (2, culture, 4)]
    for who, item, units in spends:
        assert (await redeem(servicecard, cards[who], item, units=units)).status_code == 201
    undone = (await redeem(servicecard, cards[1], medical)).json()["redemption_id"]
    assert (await servicecard.post(f"/redemptions/{undone}/reverse", {"reason": "x"})).status_code == 200

    view = (await servicecard.get(f"/members/{members[0]}/benefits")).json()
    assert view["year"] == quota_year(datetime.now(UTC))
    mine = {i["item_id"]: (i["category"], i["quota_per_year"], i["used"], i["remaining"]) for i in view["items"]}
    assert mine == {legal: ("legal_aid", 3, 2, 1), medical: ("medical", 2, 2, 0), culture: ("culture", None, 0, None)}
    assert (await servicecard.get(f"/members/{uuid.uuid4()}/benefits")).status_code == 404

    this_month = usage_month(datetime.now(UTC))
    r = await servicecard.get("/stats/usage", params={"org_id": orgs["township"]})
    rows = {(i["category"], i["month"]): (i["redemptions"], i["units"], i["members"]) for i in r.json()["items"]}
    assert rows == {("legal_aid", this_month): (3, 3, 2), ("medical", this_month): (1, 2, 1)}
    assert r.json()["total"] == {"redemptions": 4, "units": 5}
    r = await servicecard.get("/stats/usage", params={"category": "culture", "month": this_month})
    assert [(i["org_id"], i["units"]) for i in r.json()["items"]] == [(orgs["sibling"], 4)]
    r = await servicecard.get("/stats/usage", params={"org_id": orgs["township"], "month": "2001-01"})
    assert r.json()["items"] == []


# --- the catalogue ---


async def test_the_catalogue_by_category_and_withdrawal(catalogue: ServiceUnderTest) -> None:
    legal = await publish(catalogue, "legal_aid", quota=2)
    medical = await publish(catalogue, "medical", quota=None)
    item = (await catalogue.get(f"/catalog/items/{legal}")).json()
    [point] = item["service_points"]
    assert point["off_peak_hours"][0] == {"days": ["tue", "thu"], "opens": "18:00:00", "closes": "21:00:00"}
    assert (item["quota_per_year"], item["status"]) == (2, "available")

    listed = (await catalogue.get("/catalog/items", params={"category": "legal_aid"})).json()["items"]
    assert [i["item_id"] for i in listed] == [legal]
    assert {i["item_id"] for i in (await catalogue.get("/catalog/items")).json()["items"]} == {legal, medical}

    r = await catalogue.post(f"/catalog/items/{legal}/withdraw", {"reason": "provider left"})
    assert r.status_code == 200, r.text
    assert (await catalogue.get("/catalog/items", params={"category": "legal_aid"})).json()["items"] == []
    everything = (await catalogue.get("/catalog/items", params={"include_withdrawn": True})).json()["items"]
    assert {i["item_id"]: i["status"] for i in everything} == {legal: "withdrawn", medical: "available"}
    assert outcome(await catalogue.post(f"/catalog/items/{legal}/withdraw")) == (409, "item_withdrawn")
    assert (await catalogue.post(f"/catalog/items/{uuid.uuid4()}/withdraw")).status_code == 404
    assert (await catalogue.get(f"/catalog/items/{uuid.uuid4()}")).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"category": "gym"}, "category", "Input should be"),
        ({"provider": ""}, "provider", "at least 1 character"),
        ({"quota_per_year": 0}, "quota_per_year", "at least 1"),
        (
            {"service_points": [service_point(opening_hours=[{"days": ["mon"], "opens": "17:00", "closes": "09:00"}])]},
            "service_points.0.opening_hours.0.closes",
            "not after it opens",
        ),
        (
            {
                "service_points": [
                    service_point(off_peak_hours=[{"days": ["fri"], "opens": "16:00", "closes": "19:00"}])
                ]
            },
            "service_points.0.off_peak_hours.0",
            "outside the regular opening hours",
        ),
        (
            {"service_points": [service_point(opening_hours=[{"days": [], "opens": "09:00", "closes": "17:00"}])]},
            "service_points.0.opening_hours.0.days",
            "at least 1 item",
        ),
        (
            {"service_points": [service_point(opening_hours=[{"days": ["x"], "opens": "09:00", "closes": "17:00"}])]},
            "service_points.0.opening_hours.0.days.0",
            "Input should be",
        ),
        (
            {
                "service_points": [
                    service_point(off_peak_hours=[{"days": ["sun"], "opens": "09:00+08:00", "closes": "12:00"}])
                ]
            },
            "service_points.0.off_peak_hours.0.opens",
            "without a time zone",
        ),
        (
            {"service_points": [service_point(opening_hours=[], off_peak_hours=[])]},
            "service_points.0.opening_hours",
            "needs its opening hours",
        ),
        ({"service_points": [service_point(address="")]}, "service_points.0.address", "at least 1 character"),
    ],
)
async def test_invalid_items_get_422_naming_the_field(
    catalogue: ServiceUnderTest,
    overrides: dict[str, object],
    field: str,
    reason: str,
) -> None:
    r = await catalogue.post("/catalog/items", item_body(**overrides))  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


async def test_invalid_redemptions_and_queries_get_422_naming_the_field(catalogue: ServiceUnderTest) -> None:
    item = await publish(catalogue)
    unknown = "9" * 18 + luhn_check_digit("9" * 18)  # well formed, never issued
    bad_check_digit = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    cases = [
        (await redeem(catalogue, bad_check_digit, item), "card_no", "check digit"),
        (await redeem(catalogue, "12345", item), "card_no", "19 digits"),
        (await redeem(catalogue, unknown, item, units=0), "units", "at least 1"),
        (await redeem(catalogue, unknown, item, units=2000), "units", "less than or equal"),
        (await catalogue.post(f"/cards/{bad_check_digit}/reissue", {"reason": "lost"}), "card_no", "check digit"),
        (await catalogue.get("/stats/usage", params={"month": "2025-13"}), "query.month", "month 13 does not exist"),
        (await catalogue.get("/stats/usage", params={"category": "gym"}), "query.category", "Input should be"),
    ]
    for r, field, reason in cases:
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert (error["field"], reason in error["reason"]) == (field, True), r.text
    assert outcome(await redeem(catalogue, unknown, item)) == (404, "card_not_found")
    assert outcome(await catalogue.post(f"/cards/{unknown}/reissue", {"reason": "lost"})) == (404, "card_not_found")
    assert (await catalogue.get(f"/cards/{unknown}")).status_code == 404


async def test_an_item_an_organisation_offers_is_for_its_members_and_those_below(
    membership: ServiceUnderTest, servicecard: ServiceUnderTest
) -> None:
    orgs = await tree(membership)
    card_no = (await card_of(servicecard, await join(membership, orgs["township"])))["card_no"]
    offered = {}
    for owner in ("county", "township", "sibling"):
        r = await servicecard.post("/catalog/items", item_body("culture", None, org_id=orgs[owner]))
        assert r.status_code == 201, r.text
        offered[owner] = str(r.json()["item_id"])

    async def county_item_redeemed() -> bool:  # the card service learns the tree from membership's topic
        return (await redeem(servicecard, card_no, offered["county"])).status_code == 201

    await eventually(county_item_redeemed, "the organisation tree to reach the card service")
    assert outcome(await redeem(servicecard, card_no, offered["township"])) == (201, "")
    assert outcome(await redeem(servicecard, card_no, offered["sibling"])) == (409, "item_not_offered_here")
