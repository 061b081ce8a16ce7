"""Feedback through its HTTP API, with the real membership service feeding its directory over the real broker."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.feedback.service import FeedbackSettings
from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import MovableClock, ServiceUnderTest
from tests.integration.test_membership import join, make_org
from tests.support import auth
from tests.support.kafka import produce, read_topic
from tests.support.waiting import eventually

HOUR = timedelta(hours=1)
# every event in the log has reached the broker
RELAY_DONE = "SELECT position >= (SELECT coalesce(max(position), 0) FROM events) FROM relay_state"


def clock(f: ServiceUnderTest) -> MovableClock:
    moving: MovableClock = f.service.clock
    return moving


async def fetchval(f: ServiceUnderTest, sql: str, *args: object) -> Any:
    async with f.service.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def directory_knows(f: ServiceUnderTest, members: dict[str, str] | None = None, orgs: Iterable[str] = ()) -> None:
    """Wait until feedback consumed these members (with these statuses) and organisations."""
    members, orgs = members or {}, list(orgs)

    async def check() -> bool:
        known = await fetchval(
            f,
            "SELECT count(*) FROM directory_members WHERE (member_id::text, status) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            list(members),
            list(members.values()),
        )
        known_orgs = await fetchval(f, "SELECT count(*) FROM directory_orgs WHERE org_id = ANY($1::uuid[])", orgs)
        return bool(known == len(members) and known_orgs == len(orgs))

    await eventually(check)


def campaign_body(
    org_id: str,
    *,
    electorate: str = "members",
    subject_type: str = "cadre",
    subject_id: str | None = None,
    opens_in: timedelta = -HOUR,
    closes_in: timedelta = 24 * HOUR,
    **extra: object,
) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "title": "2025 年度职工群众评议工会干部",
        "subject_type": subject_type,
        "subject_id": subject_id or str(uuid.uuid4()),
        "electorate_org_id": org_id,
        "electorate": electorate,
        "opens_at": (now + opens_in).isoformat(),
        "closes_at": (now + closes_in).isoformat(),
        **extra,
    }


async def open_campaign(f: ServiceUnderTest, body: dict[str, object]) -> str:
    r = await f.post("/campaigns", body)
    assert r.status_code == 201, r.text
    return str(r.json()["campaign_id"])


async def vote(
    f: ServiceUnderTest,
    campaign_id: str,
    voter_id: str,
    score: int,
    comment: str | None = None,
    *,
    as_org: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, str | None]:
    """A ballot cast by the voter themselves: a member's token, or the voting organisation's staff's."""
    token = auth.bearer("staff", org_id=voter_id) if as_org else auth.bearer("member", member_id=voter_id)
    r = await f.post(
        f"/campaigns/{campaign_id}/ballots",
        {"voter_id": voter_id, "score": score, "comment": comment},
        headers={**token, **(headers or {})},
    )
    if r.status_code == 201:
        assert r.json() == {"campaign_id": campaign_id, "accepted": True}  # no ballot id, no receipt
    return r.status_code, r.json().get("code")


async def township_with_members(m: ServiceUnderTest, n: int) -> tuple[dict[str, str], list[str]]:
    """county > township > village, and a sibling township; n members in the township and its village."""
    county = await make_org(m, "county")
    township = await make_org(m, "township", county)
    village = await make_org(m, "village", township)
    sibling = await make_org(m, "township", county)
    voters = [(await join(m, township if i % 2 else village))["member_id"] for i in range(n)]
    return {"county": county, "township": township, "village": village, "sibling": sibling}, voters


# --- campaigns ---


async def test_one_ballot_per_eligible_voter_and_results_once_closed(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
) -> None:
    orgs, voters = await township_with_members(membership, 6)
    outsider = (await join(membership, orgs["sibling"]))["member_id"]
    suspended = (await join(membership, orgs["township"]))["member_id"]
    await membership.post(f"/members/{suspended}/suspend", {"reason": "arrears"})
    await directory_knows(
        feedback, {**dict.fromkeys([*voters, outsider], "active"), suspended: "suspended"}, orgs.values()
    )

    r = await feedback.post("/campaigns", campaign_body(orgs["township"]))
    assert r.status_code == 201, r.text
    campaign_id = r.json()["campaign_id"]
    assert r.json()["eligible"] == 6  # the township's and its village's active members

    # the electorate was fixed at opening: someone who joins afterwards does not vote in it
    newcomer = (await join(membership, orgs["township"]))["member_id"]
    await directory_knows(feedback, {newcomer: "active"})
    for stranger in (outsider, suspended, newcomer, orgs["township"]):
        as_org = stranger == orgs["township"]
        assert await vote(feedback, campaign_id, stranger, 5, as_org=as_org) == (409, "not_eligible")
    r = await feedback.get(f"/campaigns/{campaign_id}/results")
    assert (r.status_code, r.json()["code"]) == (409, "campaign_open")

    scores = [5, 4, 4, 2, 5]
    for voter, score in zip(voters, scores, strict=False):
        assert await vote(feedback, campaign_id, voter, score) == (201, None)
    assert await vote(feedback, campaign_id, voters[0], 1) == (409, "already_voted")
    # the last voter's ballot sent twice at once: one goes in
    both = await asyncio.gather(*(vote(feedback, campaign_id, voters[5], 3) for _ in range(2)))
    assert sorted(both) == [(201, None), (409, "already_voted")]
    view = (await feedback.get(f"/campaigns/{campaign_id}")).json()
    assert (view["status"], view["eligible"], view["turnout"]) == ("open", 6, 6)

    r = await feedback.post(f"/campaigns/{campaign_id}/close")
    assert r.status_code == 200, r.text
    assert r.json()["results_shown"] is True
    assert await vote(feedback, campaign_id, voters[0], 1) == (409, "campaign_closed")
    r = await feedback.post(f"/campaigns/{campaign_id}/close")
    assert (r.status_code, r.json()["code"]) == (409, "campaign_closed")

    r = await feedback.get(f"/campaigns/{campaign_id}/results")
    assert r.status_code == 200, r.text
    results = r.json()
    assert (results["turnout"], results["eligible"]) == (6, 6)
    assert results["distribution"] == {"1": 0, "2": 1, "3": 1, "4": 2, "5": 2}
    assert results["average"] == round((5 + 4 + 4 + 2 + 5 + 3) / 6, 2)

    # the ballot box is not a projection: rebuilding every read model from the log leaves it whole
    for projection in ("campaigns", "directory"):
        await feedback.service.runtime.projections.rebuild(projection)
    assert (await feedback.get(f"/campaigns/{campaign_id}/results")).json() == results
    assert await fetchval(feedback, "SELECT count(*) FROM eligible_voters") == 6


async def test_the_window_the_deadline_and_the_minimum_turnout(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
) -> None:
    orgs, voters = await township_with_members(membership, 5)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    campaign_id = await open_campaign(feedback, campaign_body(orgs["township"], opens_in=HOUR, closes_in=3 * HOUR))
    assert (await feedback.get(f"/campaigns/{campaign_id}")).json()["status"] == "upcoming"
    assert await vote(feedback, campaign_id, voters[0], 4) == (409, "campaign_closed")  # not open yet

    clock(feedback).offset = 2 * HOUR
    for voter in voters[:4]:
        assert await vote(feedback, campaign_id, voter, 4, "很好") == (201, None)
    r = await feedback.get(f"/campaigns/{campaign_id}/results")
    assert (r.status_code, r.json()["code"]) == (409, "campaign_open")

    clock(feedback).offset = 4 * HOUR  # past the deadline: closed, whether or not anyone recorded it
    assert await vote(feedback, campaign_id, voters[4], 4) == (409, "campaign_closed")

    async def swept() -> dict[str, Any] | None:
        view: dict[str, Any] = (await feedback.get(f"/campaigns/{campaign_id}")).json()
        return view if view["close_reason"] else None

    view = await eventually(swept)  # the sweeper recorded the deadline's close
    assert (view["status"], view["close_reason"], view["turnout"]) == ("closed", "deadline", 4)
    r = await feedback.get(f"/campaigns/{campaign_id}/results")
    assert (r.status_code, r.json()["code"]) == (409, "turnout_too_low")
    # 4 < 5: the results will never be shown, so the sealed ballots were deleted unopened
    async with feedback.service.pool.acquire() as conn:
        box = await conn.fetchrow("SELECT * FROM ballot_box WHERE campaign_id = $1", uuid.UUID(campaign_id))
        sealed = await conn.fetchval("SELECT count(*) FROM sealed_ballots WHERE campaign_id = $1", box["campaign_id"])
    assert (box["discarded"], box["counted"], box["comments"], sealed) == (True, True, [], 0)


async def test_lower_organisations_rate_the_organisation_above_them(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
) -> None:
    county = await make_org(membership, "county")
    below = [await make_org(membership, "township", county) for _ in range(6)]
    grandchild = await make_org(membership, "village", below[0])
    dissolved = below.pop()
    assert (await membership.post(f"/organizations/{dissolved}/dissolve")).status_code == 200
    member = (await join(membership, below[0]))["member_id"]
    await directory_knows(feedback, {member: "active"}, [county, grandchild, dissolved, *below])

    async def dissolution_consumed() -> bool:
        return bool(
            await fetchval(
                feedback, "SELECT status = 'dissolved' FROM directory_orgs WHERE org_id = $1", uuid.UUID(dissolved)
            )
        )

    await eventually(dissolution_consumed)
    r = await feedback.post(
        "/campaigns", campaign_body(county, electorate="lower_orgs", subject_type="organization", subject_id=county)
    )
    assert r.status_code == 201, r.text
    assert r.json()["eligible"] == 5
    campaign_id = r.json()["campaign_id"]
    for stranger in (grandchild, dissolved, member, county):
        assert await vote(feedback, campaign_id, stranger, 5, as_org=stranger != member) == (409, "not_eligible")
    for org, score in zip(below, [5, 5, 4, 3, 5], strict=True):
        assert await vote(feedback, campaign_id, org, score, as_org=True) == (201, None)
    assert await vote(feedback, campaign_id, below[0], 1, as_org=True) == (409, "already_voted")
    assert (await feedback.post(f"/campaigns/{campaign_id}/close")).status_code == 200
    results = (await feedback.get(f"/campaigns/{campaign_id}/results")).json()
    assert (results["turnout"], results["eligible"], results["average"]) == (5, 5, 4.4)
    assert results["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 3}


async def test_campaign_input_is_checked(membership: ServiceUnderTest, feedback: ServiceUnderTest) -> None:
    orgs, voters = await township_with_members(membership, 3)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    cases: list[tuple[dict[str, object], int, str]] = [
        (campaign_body(str(uuid.uuid4())), 404, "organization_not_found"),
        (campaign_body(orgs["township"]), 409, "electorate_too_small"),  # 3 voters, a minimum of 5
        (campaign_body(orgs["township"], min_turnout=2), 422, "min_turnout"),
        (campaign_body(orgs["township"], closes_in=-2 * HOUR), 422, "closes_at"),
        (campaign_body(orgs["township"], subject_type="organization"), 422, "subject_id"),
        (campaign_body(orgs["township"], electorate="everyone"), 422, "electorate"),
        ({**campaign_body(orgs["township"]), "opens_at": "2025-11-01T08:00:00"}, 422, "opens_at"),  # no zone
    ]
    for body, status, what in cases:
        r = await feedback.post("/campaigns", body)
        assert r.status_code == status, (what, r.text)
        assert what in (r.json()["code"] if status != 422 else r.json()["errors"][0]["field"])
    campaign_id = await open_campaign(feedback, campaign_body(orgs["township"], min_turnout=3))
    r = await feedback.post(
        f"/campaigns/{campaign_id}/ballots",
        {"voter_id": voters[0], "score": 6},
        headers=auth.bearer("member", member_id=voters[0]),
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "score")
    r = await feedback.post(
        f"/campaigns/{uuid.uuid4()}/ballots",
        {"voter_id": voters[0], "score": 3},
        headers=auth.bearer("member", member_id=voters[0]),
    )
    assert (r.status_code, r.json()["code"]) == (404, "campaign_not_found")
    assert await fetchval(feedback, "SELECT count(*) FROM voted") == 0  # refused ballots leave nothing


async def test_boxes_kept_in_plaintext_by_an_older_version_are_sealed_at_start_up(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
) -> None:
    orgs, voters = await township_with_members(membership, 5)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    still_open = await open_campaign(feedback, campaign_body(orgs["township"]))
    closed = await open_campaign(feedback, campaign_body(orgs["township"]))
    for voter in voters:
        assert await vote(feedback, closed, voter, 4) == (201, None)
    assert (await feedback.post(f"/campaigns/{closed}/close")).status_code == 200
    # what 0001's box held: four ballots in the open campaign, the comments of the closed one
    async with feedback.service.pool.acquire() as conn, conn.transaction():
        ids = [uuid.UUID(still_open), uuid.UUID(closed)]
        await conn.execute("DELETE FROM ballot_box WHERE campaign_id = ANY($1::uuid[])", ids)
        await conn.executemany(
            "INSERT INTO voted (campaign_id, voter_id) VALUES ($1, $2)", [(ids[0], uuid.UUID(v)) for v in voters[:4]]
        )
        await conn.execute(
            "INSERT INTO plaintext_ballot_box (campaign_id, score_2, score_4, score_5, comments)"
            " VALUES ($1, 1, 1, 2, $2), ($3, 0, 5, 0, $4)",
            ids[0],
            ["旧的意见", "还可以"],
            ids[1],
            ["已公布的意见"],
        )
    assert await feedback.service.seal_plaintext_boxes() == 2
    assert await fetchval(feedback, "SELECT count(*) FROM plaintext_ballot_box") == 0
    assert await fetchval(feedback, "SELECT count(*) FROM sealed_ballots") == 3  # the counts, and each comment

    assert await vote(feedback, still_open, voters[3], 1) == (409, "already_voted")
    assert await vote(feedback, still_open, voters[4], 3) == (201, None)
    assert (await feedback.post(f"/campaigns/{still_open}/close")).status_code == 200
    results = (await feedback.get(f"/campaigns/{still_open}/results")).json()
    assert (results["turnout"], results["distribution"]) == (5, {"1": 0, "2": 1, "3": 1, "4": 1, "5": 2})
    assert results["comments"] == ["旧的意见", "还可以"]
    assert (await feedback.get(f"/campaigns/{closed}/results")).json()["comments"] == ["已公布的意见"]


# --- anonymity ---

_TIME_TYPES = re.compile(r"time|date|interval")


async def dump_schema(f: ServiceUnderTest, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Every row of every table of the schema as JSON text, with its row version's transaction id (xmin)."""
    async with f.service.pool.acquire() as conn:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
                schema,
            )
        ]
        return {
            t: [
                (r["x"], r["j"])
                for r in await conn.fetch(
                    f'SELECT xmin::text AS x, row_to_json(t)::text AS j FROM "{schema}"."{t}" AS t'
                )
            ]
            for t in tables
        }


async def test_no_ballot_can_be_tied_to_its_voter(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
    feedback_settings: FeedbackSettings,
    stack: Stack,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = feedback_settings.db_schema
    orgs, voters = await township_with_members(membership, 7)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    campaign_id = await open_campaign(feedback, campaign_body(orgs["township"]))
    await eventually(lambda: fetchval(feedback, RELAY_DONE))  # the relay is done
    before = await dump_schema(feedback, schema)

    ballots = [
        (voter, score, f"意见-{uuid.uuid4().hex[:8]}" if i % 3 else None)
        for i, (voter, score) in enumerate(zip(voters, [5, 1, 4, 4, 2, 5, 3], strict=True))
    ]
    comments = [c for _, _, c in ballots if c]
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    for voter, score, comment in ballots:
        # a client's Idempotency-Key is not remembered: that record would timestamp the voter
        headers = {"Idempotency-Key": f"ballot-{uuid.uuid4()}"}
        assert await vote(feedback, campaign_id, voter, score, comment, headers=headers) == (201, None)
    assert await vote(feedback, campaign_id, voters[0], 2) == (409, "already_voted")
    # refused ballots leave no audit row either: a row with a time and the token's subject would pair them
    r = await feedback.post(f"/campaigns/{campaign_id}/ballots", {"voter_id": voters[1], "score": 3})  # an admin
    assert (r.status_code, r.json()["code"]) == (403, "role_not_permitted")
    someone_else = auth.bearer("member", member_id=voters[0])
    r = await feedback.post(
        f"/campaigns/{campaign_id}/ballots", {"voter_id": voters[1], "score": 3}, headers=someone_else
    )
    assert (r.status_code, r.json()["code"]) == (403, "not_the_voter")
    voting_logs = list(caplog.records)
    during = await dump_schema(feedback, schema)

    # 1. only the register and the sealed box grew, one row each per voter; nothing else gained a row
    grew = {t: len(rows) - len(before.get(t, [])) for t, rows in during.items() if len(rows) != len(before.get(t, []))}
    assert grew == {"voted": len(ballots), "sealed_ballots": len(ballots)}

    # 2. no table has both a voter and a score or comment; no ballot table has a time or a sequence
    async with feedback.service.pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, column_default, is_identity "
            "FROM information_schema.columns WHERE table_schema = $1",
            schema,
        )
    by_table: dict[str, list[Any]] = {}
    for c in columns:
        by_table.setdefault(c["table_name"], []).append(c)
    for table, cols in by_table.items():
        names = [c["column_name"] for c in cols]
        if any("voter" in n for n in names):
            assert not any("score" in n or "comment" in n for n in names), table
    for table in ("voted", "ballot_box", "sealed_ballots"):
        for c in by_table[table]:
            assert not _TIME_TYPES.search(c["data_type"]), (table, c["column_name"])
            default = c["column_default"] or ""
            assert "nextval" not in default, (table, c["column_name"])
            assert "now" not in default, (table, c["column_name"])
            assert c["is_identity"] == "NO"
    assert sorted(c["column_name"] for c in by_table["voted"]) == ["campaign_id", "voter_id"]
    # a sealed ballot is ciphertext, bytea only beside its campaign
    assert {c["column_name"]: c["data_type"] for c in by_table["sealed_ballots"]} == {
        "campaign_id": "uuid",
        "score": "bytea",
        "comment": "bytea",
    }

    # 3. while voting goes on, no comment is anywhere in the schema, and no row names a voter and holds a ballot
    for table, rows in during.items():
        for _, text in rows:
            assert not any(c in text for c in comments), table
            if any(v in text for v in voters):
                assert '"score' not in text, table

    # 4. a voter's transaction wrote their register row and one sealed ballot, which shares the id and says nothing
    voted_xmins = {x for x, _ in during["voted"]}
    sharing = Counter(t for t, rows in during.items() if t != "voted" for x, _ in rows if x in voted_xmins)
    assert sharing == {"sealed_ballots": len(ballots)}
    assert len(during["ballot_box"]) == 1

    # 5. nothing about a ballot in the logs: the capture saw every ballot request, and no voter or comment
    assert sum("/ballots" in r.getMessage() for r in voting_logs) >= len(ballots)
    for record in voting_logs:
        text = record.getMessage() + repr(record.__dict__)
        assert not any(v in text for v in voters), text
        assert not any(c in text for c in comments), text

    # 6. the topic: the campaign's facts, never a ballot
    assert (await feedback.post(f"/campaigns/{campaign_id}/close")).status_code == 200
    results = (await feedback.get(f"/campaigns/{campaign_id}/results")).json()
    assert results["distribution"] == {"1": 1, "2": 1, "3": 1, "4": 2, "5": 2}
    assert results["comments"] == sorted(comments)
    after = await dump_schema(feedback, schema)
    assert after["sealed_ballots"] == []  # the close opened the sums and deleted the ciphertexts
    holding = [(t, text) for t, rows in after.items() for _, text in rows if any(c in text for c in comments)]
    assert [t for t, _ in holding] == ["ballot_box"]  # one row, sorted, naming no voter
    assert json.loads(holding[0][1])["comments"] == sorted(comments)
    records = await read_topic(stack.bootstrap, f"{topic_prefix}union.feedback.v1", expect=3)
    types = [dict(r.headers)["ce_type"].decode() for r in records]
    assert sorted(types) == [
        "union.feedback.CampaignClosed.v1",
        "union.feedback.CampaignOpened.v1",
        "union.feedback.ResultsPublished.v1",
    ]
    for r in records:
        text = (r.value + b"".join(v for _, v in r.headers)).decode()
        assert not any(v in text for v in voters)
        assert not any(c in text for c in comments)
    async with feedback.service.pool.acquire() as conn:
        events = [r["event_type"] for r in await conn.fetch("SELECT event_type FROM events ORDER BY position")]
    assert events == ["CampaignOpened", "CampaignClosed", "ResultsPublished"]


# --- ratings ---


def redeemed(member_id: str, org_id: str, category: str, when: datetime) -> tuple[str, tuple[Any, ...]]:
    redemption_id, item_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/union/servicecard",
        type="union.servicecard.BenefitRedeemed.v1",
        subject=f"usage-{member_id}-{item_id}-{when.year}",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={
            "redemption_id": redemption_id,
            "member_id": member_id,
            "card_no_masked": "621700*********1234",
            "item_id": item_id,
            "category": category,
            "org_id": org_id,
            "units": 1,
            "provider_ref": None,
            "year": when.year,
            "redeemed_at": when.isoformat(),
        },
    )
    return redemption_id, envelope.to_kafka()


def reversed_(redemption_id: str, member_id: str) -> tuple[Any, ...]:
    return Envelope(
        id=uuid.uuid4(),
        source="/union/servicecard",
        type="union.servicecard.RedemptionReversed.v1",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={
            "redemption_id": redemption_id,
            "member_id": member_id,
            "item_id": str(uuid.uuid4()),
            "units": 1,
            "year": 2025,
            "reason": "entered twice",
            "reversed_at": datetime.now(UTC).isoformat(),
        },
    ).to_kafka()


async def test_a_redemption_is_rated_once_and_averages_by_category_and_month(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    county = await make_org(membership, "county")
    township = await make_org(membership, "township", county)
    await directory_knows(feedback, orgs=[county, township])
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    october, november = datetime(2025, 10, 15, 2, tzinfo=UTC), datetime(2025, 11, 3, 2, tzinfo=UTC)
    plan = [
        (alice, township, "medical", october, 5),
        (bob, township, "medical", october, 2),
        (alice, township, "medical", november, 3),
        (bob, township, "legal_aid", november, 4),
        (alice, county, "legal_aid", november, 1),
    ]
    made = [redeemed(who, org, category, when) for who, org, category, when, _ in plan]
    extra_id, extra = redeemed(bob, township, "culture", november)
    topic = f"{topic_prefix}union.servicecard.v1"
    await produce(stack.bootstrap, topic, [m for _, m in made] + [extra, extra])  # redelivered too
    await produce(stack.bootstrap, topic, [reversed_(extra_id, bob)])

    async def reversal_consumed() -> bool:
        return bool(
            await fetchval(feedback, "SELECT reversed FROM redemptions WHERE redemption_id = $1", uuid.UUID(extra_id))
        )

    await eventually(reversal_consumed)
    for (redemption_id, _), (who, *_, score) in zip(made, plan, strict=True):
        r = await feedback.post(
            "/ratings",
            {"redemption_id": redemption_id, "member_id": who, "score": score, "comment": "态度很好"},
            headers=auth.bearer("member", member_id=who),
        )
        assert r.status_code == 201, r.text
    first = made[0][0]
    refusals = [
        ({"redemption_id": first, "member_id": alice, "score": 1}, 409, "already_rated"),
        ({"redemption_id": made[1][0], "member_id": alice, "score": 1}, 409, "not_your_redemption"),
        ({"redemption_id": extra_id, "member_id": bob, "score": 1}, 409, "redemption_reversed"),
        ({"redemption_id": str(uuid.uuid4()), "member_id": bob, "score": 1}, 404, "redemption_not_found"),
        ({"redemption_id": first, "member_id": alice, "score": 0}, 422, "invalid_input"),
    ]
    for body, status, expected in refusals:
        r = await feedback.post("/ratings", body, headers=auth.bearer("member", member_id=body["member_id"]))
        assert (r.status_code, r.json()["code"]) == (status, expected)

    satisfaction = (await feedback.get(f"/organizations/{township}/satisfaction", params={"subtree": False})).json()
    assert satisfaction["items"] == [
        {"category": "medical", "month": "2025-10", "ratings": 2, "average": 3.5},
        {"category": "legal_aid", "month": "2025-11", "ratings": 1, "average": 4.0},
        {"category": "medical", "month": "2025-11", "ratings": 1, "average": 3.0},
    ]
    assert satisfaction["overall"] == {"ratings": 4, "average": 3.5}
    whole = (await feedback.get(f"/organizations/{county}/satisfaction")).json()  # the subtree by default
    assert {(i["category"], i["month"]): i["ratings"] for i in whole["items"]} == {
        ("medical", "2025-10"): 2,
        ("legal_aid", "2025-11"): 2,
        ("medical", "2025-11"): 1,
    }
    assert whole["overall"] == {"ratings": 5, "average": 3.0}
    assert (await feedback.get(f"/organizations/{uuid.uuid4()}/satisfaction")).status_code == 404

    published = await read_topic(stack.bootstrap, f"{topic_prefix}union.feedback.v1", expect=5)
    assert {r.key.decode() for r in published} == {m[0] for m in made}  # keyed by redemption
    assert all(b"comment" not in r.value and "态度".encode() not in r.value for r in published)


# --- requests ---


def organization_changed(member_id: str, from_org: str, to_org: str) -> tuple[Any, ...]:
    return Envelope(
        id=uuid.uuid4(),
        source="/union/membership",
        type="union.membership.MemberOrganizationChanged.v1",
        subject=f"member-{member_id}",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={"member_id": member_id, "from_org_id": from_org, "to_org_id": to_org, "transfer_id": str(uuid.uuid4())},
    ).to_kafka()


async def test_requests_go_to_the_members_organisation_and_are_answered(
    membership: ServiceUnderTest,
    feedback: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    county = await make_org(membership, "county")
    township, other = await make_org(membership, "township", county), await make_org(membership, "township", county)
    member, leaver = (await join(membership, township))["member_id"], (await join(membership, township))["member_id"]
    retired = (await join(membership, township))["member_id"]
    await membership.post(f"/members/{leaver}/terminate", {"reason": "withdrew"})
    assert (await membership.post(f"/members/{retired}/retain", {"reason": "retired"})).status_code == 200
    await directory_knows(
        feedback, {member: "active", leaver: "terminated", retired: "retained"}, [county, township, other]
    )
    # 保留会籍: a retired member is still a member, and may ask their union for help
    r = await feedback.post(
        "/requests",
        {"member_id": retired, "category": "rights", "text": "退休手续"},
        headers=auth.bearer("member", member_id=retired),
    )
    assert r.status_code == 201, r.text
    from_retired = r.json()["request_id"]

    as_member = auth.bearer("member", member_id=member)  # a request is the member's own
    r = await feedback.post(
        "/requests", {"member_id": member, "category": "wages", "text": "企业拖欠加班费"}, headers=as_member
    )
    assert r.status_code == 201, r.text
    first = r.json()["request_id"]
    for body, status, code in [
        ({"member_id": leaver, "category": "wages", "text": "x"}, 409, "member_terminated"),
        ({"member_id": str(uuid.uuid4()), "category": "wages", "text": "x"}, 404, "member_not_found"),
        ({"member_id": member, "category": "wages", "text": ""}, 422, "invalid_input"),
    ]:
        r = await feedback.post("/requests", body, headers=auth.bearer("member", member_id=body["member_id"]))
        assert (r.status_code, r.json()["code"]) == (status, code)

    # the member moves: their next request goes to the new organisation
    moving = organization_changed(member, township, other)
    await produce(stack.bootstrap, f"{topic_prefix}union.membership.v1", [moving])

    async def moved() -> bool:
        return bool(
            await fetchval(
                feedback,
                "SELECT org_id = $2 FROM directory_members WHERE member_id = $1",
                uuid.UUID(member),
                uuid.UUID(other),
            )
        )

    await eventually(moved)
    second = (
        await feedback.post(
            "/requests", {"member_id": member, "category": "safety", "text": "车间通风差"}, headers=as_member
        )
    ).json()["request_id"]

    clock(feedback).offset = timedelta(days=3, hours=1)
    opened = (await feedback.get(f"/organizations/{township}/requests", params={"status": "open"})).json()["items"]
    assert sorted(i["request_id"] for i in opened) == sorted([first, from_retired])
    [open_one] = [i for i in opened if i["request_id"] == first]
    assert (open_one["request_id"], open_one["category"], open_one["status"]) == (first, "wages", "open")
    assert open_one["age_days"] == 3
    assert open_one["age_seconds"] >= 3 * 86400 + 3600
    r = await feedback.post(f"/requests/{first}/answer", {"by": "staff-9", "text": "已约谈企业，下周补发"})
    assert r.status_code == 200, r.text
    r = await feedback.post(f"/requests/{first}/answer", {"by": "staff-9", "text": "again"})
    assert (r.status_code, r.json()["code"]) == (409, "request_answered")
    assert (await feedback.post(f"/requests/{uuid.uuid4()}/answer", {"by": "s", "text": "x"})).status_code == 404
    still_open = (await feedback.get(f"/organizations/{township}/requests", params={"status": "open"})).json()["items"]
    assert [i["request_id"] for i in still_open] == [from_retired]
    [answered] = (await feedback.get(f"/organizations/{township}/requests", params={"status": "answered"})).json()[
        "items"
    ]
    assert (answered["answer"], answered["answered_by"]) == ("已约谈企业，下周补发", "staff-9")
    assert [i["request_id"] for i in (await feedback.get(f"/organizations/{other}/requests")).json()["items"]] == [
        second
    ]

    published = await read_topic(stack.bootstrap, f"{topic_prefix}union.feedback.v1", expect=4)
    assert sorted(dict(r.headers)["ce_type"].decode() for r in published) == [
        "union.feedback.RequestAnswered.v1",
        "union.feedback.RequestRaised.v1",
        "union.feedback.RequestRaised.v1",
        "union.feedback.RequestRaised.v1",
    ]
    assert all("拖欠".encode() not in r.value for r in published)  # the text stays in the service
    assert {r.key.decode() for r in published} == {member, retired}


async def test_a_nul_character_in_a_request_gets_422(feedback: ServiceUnderTest) -> None:
    # found by tests/integration/test_fuzz.py: PostgreSQL text cannot hold U+0000, the append answered 500
    body = {"member_id": str(uuid.uuid4()), "category": "wages", "text": "拖欠\u0000工资"}
    r = await feedback.post("/requests", body, headers=auth.bearer("member", member_id=body["member_id"]))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": "text", "reason": "contains a NUL character (U+0000), which text cannot hold"}
    ]
