"""Transfer through its HTTP API and its topics, next to the real membership service, against the real
PostgreSQL and broker: no mocks. Membership creates organisations and members; transfer learns of them
only from membership's topic, so every test first waits until transfer has heard."""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import confluent_kafka
import pytest

from services.transfer.main import build_app
from services.transfer.regional import EVENT_TYPE
from services.transfer.service import TransferSettings
from shared.consumer import dead_letter_reason
from shared.envelope import Envelope
from shared.store import Metadata
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.integration.test_membership import join, make_org
from tests.support import auth, data
from tests.support.kafka import librdkafka, produce, read_topic
from tests.support.waiting import eventually

REGIONAL = "union.regional.employment.v1"


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def transfer_settings(stack: Stack, unique: str, topic_prefix: str, pii_keys: dict[str, str]) -> TransferSettings:
    return TransferSettings(
        database_url=stack.dsn,
        db_schema=f"x_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        relay_poll_interval=0.05,
        blind_index_key=pii_keys["blind_index_key"],
        deadline_poll_interval=0.1,
        bulk_poll_interval=0.1,
        bulk_chunk_size=2,
        consumer_max_retries=1,
    )


@asynccontextmanager
async def running_transfer(settings: TransferSettings, **overrides: Any) -> AsyncIterator[ServiceUnderTest]:
    async with serve_in_process(build_app(settings.model_copy(update=overrides))) as running:
        yield running


@pytest.fixture
async def transfer(transfer_settings: TransferSettings, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    async with running_transfer(transfer_settings) as running:
        yield running


# --- helpers -------------------------------------------------------------------------------------------


async def heard_of(t: ServiceUnderTest, members: Sequence[str] = (), orgs: Sequence[str] = ()) -> None:
    """Wait until transfer has consumed membership's events about these members (on both its topics) and
    organisations."""

    async def known() -> bool:
        for m in members:
            if (await t.get(f"/members/{m}/transfers")).status_code != 200:
                return False
        for o in orgs:
            if (await t.get(f"/organizations/{o}/transfers")).status_code != 200:
                return False
        # and their blind indexes, from membership's restricted topic: how a regional change finds them
        async with t.service.pool.acquire() as conn:
            indexed = await conn.fetchval(
                "SELECT count(*) FROM person_index WHERE member_id = ANY($1::uuid[])", [uuid.UUID(m) for m in members]
            )
        return bool(indexed == len(members))

    await eventually(known, what=f"transfer to hear of {members} {orgs}")


async def member_status(t: ServiceUnderTest, member_id: str, status: str) -> None:
    async def seen() -> bool:
        r = await t.get(f"/members/{member_id}/transfers")
        return r.status_code == 200 and r.json()["member_status"] == status

    await eventually(seen, what=f"member {member_id} {status}")


async def county_tree(m: ServiceUnderTest) -> dict[str, str]:
    """A county federation leading two townships, an enterprise union and a regional federation."""
    county = await make_org(m, "county")
    employer = data.credit_code()
    return {
        "county": county,
        "employer": employer,
        "a": await make_org(m, "township", county),
        "b": await make_org(m, "township", county),
        "enterprise": await make_org(m, "enterprise", county, credit_code=employer),
        "federation": await make_org(m, "federation", county, subtype="regional"),
    }


async def request(t: ServiceUnderTest, member_id: str, to_org_id: str, by: str = "staff-a") -> Any:
    return await t.post(
        "/transfers", {"member_id": member_id, "to_org_id": to_org_id, "reason": "new job", "requested_by": by}
    )


async def requested(t: ServiceUnderTest, member_id: str, to_org_id: str, by: str = "staff-a") -> str:
    r = await request(t, member_id, to_org_id, by)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requested"
    return str(r.json()["transfer_id"])


async def step(t: ServiceUnderTest, transfer_id: str, action: str, status: int = 200, **body: object) -> Any:
    r = await t.post(f"/transfers/{transfer_id}/{action}", {"by": "staff", **body})
    assert r.status_code == status, (action, r.text)
    return r.json()


async def complete(t: ServiceUnderTest, transfer_id: str) -> Any:
    await step(t, transfer_id, "release", by="source-staff")
    return await step(t, transfer_id, "accept", by="target-staff")


def employment_changed(
    id_number: str, credit_code: str, region: str = "310115", source: str = "/regional/sh-hrss", **extra: object
) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
    return Envelope(
        id=uuid.uuid4(),
        source=source,
        type=EVENT_TYPE,
        time=datetime.now(UTC),
        partitionkey=credit_code,
        data={
            "id_number": id_number,
            "employer_credit_code": credit_code,
            "employer_name": "新雇主有限公司",
            "region_code": region,
            "effective_date": "2025-03-01",
            **extra,
        },
    ).to_kafka()


async def transfers_of(t: ServiceUnderTest, member_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await t.get(f"/members/{member_id}/transfers")).json()["items"]
    return items


# --- the process ---------------------------------------------------------------------------------------


async def test_a_completed_transfer_moves_the_member_in_membership(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    joined = await join(m, orgs["a"])
    await heard_of(t, [joined["member_id"]], [orgs["a"], orgs["b"]])
    transfer_id = await requested(t, joined["member_id"], orgs["b"])
    view = await complete(t, transfer_id)
    assert (view["status"], view["from_org_id"], view["to_org_id"]) == ("completed", orgs["a"], orgs["b"])
    assert [s["step"] for s in view["steps"]] == ["requested", "released", "accepted", "completed"]
    assert [s["by"] for s in view["steps"][:3]] == ["staff-a", "source-staff", "target-staff"]
    read = (await t.get(f"/transfers/{transfer_id}")).json()
    assert [(s["step"], s["by"], s["org_id"]) for s in read["steps"]] == [
        (s["step"], s["by"], s["org_id"]) for s in view["steps"]
    ]
    assert datetime.fromisoformat(read["completed_at"]) == datetime.fromisoformat(view["completed_at"])

    async def moved() -> bool:
        return (await m.get(f"/members/{joined['member_id']}")).json()["org_id"] == orgs["b"]

    await eventually(moved, what="membership to move the member")
    member = (await m.get(f"/members/{joined['member_id']}")).json()
    assert (member["member_no"], member["status"]) == (joined["member_no"], "active")

    async def dossier() -> list[str] | None:
        events = (await m.get(f"/members/{joined['member_id']}/history")).json()["events"]
        names = [e["event"] for e in events]
        return names if "MemberOrganizationChanged" in names else None

    names = await eventually(dossier, what="the dossier")
    assert names[names.index("TransferRequested") :] == [
        "TransferRequested",
        "TransferReleased",
        "TransferAccepted",
        "TransferCompleted",
        "MemberOrganizationChanged",
    ]
    out = (await t.get(f"/organizations/{orgs['a']}/transfers", params={"direction": "out"})).json()["items"]
    into = (
        await t.get(f"/organizations/{orgs['b']}/transfers", params={"direction": "in", "status": "completed"})
    ).json()["items"]
    assert [i["transfer_id"] for i in out] == [i["transfer_id"] for i in into] == [transfer_id]
    assert (await t.get(f"/organizations/{orgs['b']}/transfers", params={"direction": "out"})).json()["items"] == []
    assert (await t.get(f"/organizations/{orgs['b']}/transfers", params={"status": "requested"})).json()["items"] == []
    # the member can move on from the new organisation straight away
    again = await requested(t, joined["member_id"], orgs["federation"])
    assert (await t.get(f"/transfers/{again}")).json()["from_org_id"] == orgs["b"]


async def test_rejected_at_release_and_at_accept(
    membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    first, second = await join(m, orgs["a"]), await join(m, orgs["a"])
    await heard_of(t, [first["member_id"], second["member_id"]], [orgs["b"]])

    at_release = await requested(t, first["member_id"], orgs["b"])
    view = await step(t, at_release, "reject", by="source-staff", reason="会费未清")
    assert view["status"] == "rejected"
    assert view["steps"][-1] | {"at": None} == {
        "step": "rejected",
        "by": "source-staff",
        "org_id": orgs["a"],
        "reason": "会费未清",
        "at": None,
    }

    at_accept = await requested(t, second["member_id"], orgs["b"])
    await step(t, at_accept, "release", by="source-staff")
    view = await step(t, at_accept, "reject", by="target-staff", reason="not our employer", org_id=orgs["b"])
    assert (view["status"], view["steps"][-1]["org_id"]) == ("rejected", orgs["b"])
    assert (await step(t, at_accept, "accept", 409))["code"] == "transfer_closed"
    # a rejected transfer is closed: the member may be asked for again
    await requested(t, first["member_id"], orgs["b"])


async def test_only_the_requester_cancels(membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    mine, theirs = (await join(m, orgs["a"]))["member_id"], (await join(m, orgs["a"]))["member_id"]
    await heard_of(t, [mine, theirs], [orgs["b"]])
    member = auth.bearer("member", member_id=mine)
    source_staff = auth.bearer("staff", org_id=orgs["a"], subject="clerk-a")
    target_staff = auth.bearer("staff", org_id=orgs["b"])

    # the member asked: the member may cancel; the source side may not do it for them, nor may the target side
    r = await t.post("/transfers", {"member_id": mine, "to_org_id": orgs["b"], "reason": "new job"}, headers=member)
    assert r.status_code == 201, r.text
    own_request = r.json()["transfer_id"]
    await step(t, own_request, "release")
    for stranger in (source_staff, target_staff):
        r = await t.post(f"/transfers/{own_request}/cancel", {}, headers=stranger)
        assert (r.status_code, r.json()["code"]) == (403, "outside_organization")
    r = await t.post(f"/transfers/{own_request}/cancel", {"reason": "stayed after all"}, headers=member)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["closed_reason"]) == ("cancelled", "stayed after all")
    assert (await step(t, own_request, "accept", 409))["code"] == "transfer_closed"

    # the union asked: its side cancels, the member may not
    body = {"member_id": theirs, "to_org_id": orgs["b"], "reason": "reorganisation"}
    r = await t.post("/transfers", body, headers=source_staff)
    unions_request = r.json()["transfer_id"]
    r = await t.post(f"/transfers/{unions_request}/cancel", {}, headers=auth.bearer("member", member_id=theirs))
    assert (r.status_code, r.json()["code"]) == (403, "not_own_record")
    r = await t.post(f"/transfers/{unions_request}/cancel", {}, headers=source_staff)
    assert r.status_code == 200, r.text


async def test_what_is_refused(membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    moving, suspended = await join(m, orgs["a"]), await join(m, orgs["a"])
    await m.post(f"/members/{suspended['member_id']}/suspend", {"reason": "arrears"})
    await heard_of(t, [moving["member_id"]], [orgs["b"], orgs["county"], orgs["federation"]])
    await member_status(t, suspended["member_id"], "suspended")

    open_one = await requested(t, moving["member_id"], orgs["b"])
    cases = [
        (moving["member_id"], orgs["federation"], 409, "transfer_open"),
        (suspended["member_id"], orgs["b"], 409, "member_not_active"),
        (suspended["member_id"], orgs["a"], 409, "member_not_active"),
        (str(uuid.uuid4()), orgs["b"], 404, "member_not_found"),
        (moving["member_id"], str(uuid.uuid4()), 404, "organization_not_found"),
    ]
    for member_id, to_org, status, code in cases:
        r = await request(t, member_id, to_org)
        assert (r.status_code, r.json()["code"]) == (status, code), (code, r.text)
    await step(t, open_one, "cancel", by="staff-a")
    for to_org, code in ((orgs["county"], "target_not_accepting"), (orgs["a"], "same_organization")):
        r = await request(t, moving["member_id"], to_org)
        assert (r.status_code, r.json()["code"]) == (409, code)
    r = await t.post("/transfers", {"member_id": "nope", "to_org_id": orgs["b"], "reason": "x", "requested_by": "s"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "member_id")
    assert (await t.get(f"/transfers/{uuid.uuid4()}")).status_code == 404
    # a reinstated member may transfer again
    await m.post(f"/members/{suspended['member_id']}/reinstate", {"reason": "paid"})
    await member_status(t, suspended["member_id"], "active")
    await requested(t, suspended["member_id"], orgs["b"])


async def test_a_terminated_membership_withdraws_its_open_transfer(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    joined = await join(m, orgs["a"])
    await heard_of(t, [joined["member_id"]], [orgs["b"]])
    transfer_id = await requested(t, joined["member_id"], orgs["b"])
    await m.post(f"/members/{joined['member_id']}/terminate", {"reason": "withdrew"})

    async def withdrawn() -> Any:
        view = (await t.get(f"/transfers/{transfer_id}")).json()
        return view if view["status"] == "cancelled" else None

    view = await eventually(withdrawn, what="the transfer to be withdrawn")
    assert view["steps"][-1]["by"] == "service:/union/membership"


async def test_concurrent_accept_and_cancel_exactly_one_wins(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    members = [await join(m, orgs["a"]) for _ in range(4)]
    await heard_of(t, [j["member_id"] for j in members], [orgs["b"]])
    for joined in members:
        transfer_id = await requested(t, joined["member_id"], orgs["b"])
        await step(t, transfer_id, "release")
        accept, cancel = await asyncio.gather(
            t.post(f"/transfers/{transfer_id}/accept", {"by": "target-staff"}),
            t.post(f"/transfers/{transfer_id}/cancel", {"by": "staff-a"}),
        )
        assert sorted([accept.status_code, cancel.status_code]) == [200, 409], (accept.text, cancel.text)
        loser = accept if accept.status_code == 409 else cancel
        assert loser.json()["code"] in {"concurrency_conflict", "transfer_closed"}
        final = (await t.get(f"/transfers/{transfer_id}")).json()
        assert final["status"] == ("completed" if accept.status_code == 200 else "cancelled")
        closing = [s["step"] for s in final["steps"] if s["step"] in {"completed", "cancelled"}]
        assert len(closing) == 1
    async with t.service.pool.acquire() as conn:
        versions = await conn.fetch(
            "SELECT stream_id, count(*) AS n FROM events WHERE event_type IN "
            "('TransferCompleted', 'TransferCancelled') GROUP BY stream_id"
        )
    assert len(versions) == 4
    assert all(r["n"] == 1 for r in versions)


# --- deadlines -----------------------------------------------------------------------------------------


async def test_an_unanswered_transfer_escalates_to_the_common_parent_then_expires_across_a_restart(
    membership_consuming: ServiceUnderTest,
    transfer_settings: TransferSettings,
    all_topics: list[str],
) -> None:
    m = membership_consuming
    orgs = await county_tree(m)
    elsewhere = await make_org(m, "township", await make_org(m, "county"))  # another tree: no common parent
    left, acted, lonely = [await join(m, orgs["a"]) for _ in range(3)]
    short = {"transfer_expiry_seconds": 1.5, "escalation_expiry_seconds": 4.0}
    async with running_transfer(transfer_settings, **short) as t:
        await heard_of(t, [left["member_id"], acted["member_id"], lonely["member_id"]], [orgs["b"], elsewhere])
        unanswered = await requested(t, left["member_id"], orgs["b"])
        decided = await requested(t, acted["member_id"], orgs["b"])
        orphan = await requested(t, lonely["member_id"], elsewhere)
        async with t.service.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM deadlines") == 3
    # the deadlines live in the database: a new process, without consumers, keeps them
    async with running_transfer(transfer_settings, run_consumers=False, **short) as t:

        async def escalated() -> Any:
            view = (await t.get(f"/transfers/{decided}")).json()
            return view if view["escalated_to_org_id"] else None

        view = await eventually(escalated, what="escalation")
        assert (view["status"], view["escalated_to_org_id"]) == ("requested", orgs["county"])
        assert view["steps"][-1]["step"] == "escalated"
        assert view["steps"][-1]["org_id"] == orgs["county"]
        # the common parent decides for both sides; the sides themselves still may, an outsider may not
        assert (await step(t, decided, "release", 409, org_id=orgs["federation"]))["code"] == "wrong_organization"
        await step(t, decided, "release", by="county-staff", org_id=orgs["county"])
        view = await step(t, decided, "accept", by="county-staff", org_id=orgs["county"])
        assert view["status"] == "completed"
        assert [s["org_id"] for s in view["steps"] if s["step"] in {"released", "accepted"}] == [orgs["county"]] * 2

        async def expired(transfer_id: str) -> Any:
            view = (await t.get(f"/transfers/{transfer_id}")).json()
            return view if view["status"] == "expired" else None

        orphaned = await eventually(lambda: expired(orphan), what="expiry without a parent")
        assert [s["step"] for s in orphaned["steps"]] == ["requested", "expired"]
        view = await eventually(lambda: expired(unanswered), timeout=20, what="expiry after escalation")
        assert [s["step"] for s in view["steps"]] == ["requested", "escalated", "expired"]
        assert "common parent" in view["closed_reason"]
        async with t.service.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM deadlines") == 0
        # an expired transfer is closed: the member may be asked for again
        await requested(t, left["member_id"], orgs["b"])


# --- regional employment changes -----------------------------------------------------------------------


async def test_an_employment_change_opens_a_transfer_to_the_employer_s_union_or_the_regional_federation(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    to_employer, to_federation = await join(m, orgs["a"]), await join(m, orgs["a"])
    await heard_of(t, [to_employer["member_id"], to_federation["member_id"]], [orgs["enterprise"], orgs["federation"]])
    await produce(
        stack.bootstrap,
        topic_prefix + REGIONAL,
        [
            employment_changed(to_employer["id_number"], orgs["employer"]),
            employment_changed(to_federation["id_number"].lower(), data.credit_code(), industry="物流"),
        ],
    )
    for joined, target in ((to_employer, orgs["enterprise"]), (to_federation, orgs["federation"])):
        [item] = await eventually(lambda j=joined: transfers_of(t, j["member_id"]), what="an automatic transfer")
        assert (item["to_org_id"], item["from_org_id"], item["status"]) == (target, orgs["a"], "requested")
        assert item["requested_by"] == "regional:/regional/sh-hrss"
        assert item["reason"].startswith("employment changed: 新雇主有限公司")
    # nothing stored in the transfer service holds an identity number in clear
    async with t.service.pool.acquire() as conn:
        stored = "\n".join(
            [r["t"] for r in await conn.fetch("SELECT coalesce(envelope::text, '') AS t FROM inbox")]
            + [r["t"] for r in await conn.fetch("SELECT data::text AS t FROM events")]
        )
        # the changes were recorded (each once), their envelopes not kept: no projection reads them again
        regional = await conn.fetch("SELECT envelope FROM inbox WHERE event_type LIKE '%EmploymentChanged%'")
    assert [r["envelope"] for r in regional] == [None, None]
    for joined in (to_employer, to_federation):
        assert joined["id_number"] not in stored
        assert joined["id_number"].lower() not in stored


async def test_an_erasure_leaves_no_copy_of_the_blind_index_in_transfer(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    leaver, stayer = await join(m, orgs["a"]), await join(m, orgs["a"])
    await heard_of(t, [leaver["member_id"], stayer["member_id"]], [orgs["enterprise"]])
    # a regional change names the leaver (its inbox row keeps no envelope: neither the number nor its blind index)
    await produce(stack.bootstrap, topic_prefix + REGIONAL, [employment_changed(leaver["id_number"], orgs["employer"])])
    await eventually(lambda: transfers_of(t, leaver["member_id"]), what="the regional change's transfer")
    blind_index = t.service.vault.blind_index(leaver["id_number"])

    async def copies(index: str) -> int:
        async with t.service.pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    "SELECT (SELECT count(*) FROM inbox WHERE strpos(envelope::text, $1) > 0)"
                    " + (SELECT count(*) FROM person_index WHERE id_blind_index = $1)"
                    " + (SELECT count(*) FROM events WHERE strpos(data::text || metadata::text, $1) > 0)",
                    index,
                )
            )

    assert await copies(blind_index) >= 2  # person_index, the restricted event

    await m.post(f"/members/{leaver['member_id']}/terminate", {"reason": "withdrew"})
    erased = await m.http.delete(f"/members/{leaver['member_id']}/personal-data")
    assert erased.status_code == 200, erased.text
    # once transfer has read the erasure (a read with its position waits for it), no copy is left
    r = await t.get(f"/members/{leaver['member_id']}/transfers", params={"after": erased.json()["position"]})
    assert r.status_code == 200, r.text
    assert await copies(blind_index) == 0
    assert await copies(t.service.vault.blind_index(stayer["id_number"])) >= 2  # the others' stay
    # and the erased person can no longer be matched: a new change naming them is a stranger's
    await produce(stack.bootstrap, topic_prefix + REGIONAL, [employment_changed(leaver["id_number"], orgs["employer"])])
    [dead] = await read_topic(stack.bootstrap, topic_prefix + REGIONAL + ".dlq", expect=1, timeout=30)
    assert "not a member" in (dead_letter_reason(dead.headers) or "")


async def test_a_non_member_or_malformed_change_is_dead_lettered_and_the_next_is_handled(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    joined, already_there = await join(m, orgs["a"]), await join(m, orgs["enterprise"])
    await heard_of(t, [joined["member_id"], already_there["member_id"]], [orgs["enterprise"]])
    stranger = data.identity_number()
    wrong_check = joined["id_number"][:17] + ("0" if joined["id_number"][17] != "0" else "1")
    wrong_type = Envelope(
        id=uuid.uuid4(),
        source="/regional/sh-hrss",
        type="union.regional.EmploymentEnded.v1",
        time=datetime.now(UTC),
        data={"id_number": joined["id_number"]},
    ).to_kafka()
    await produce(
        stack.bootstrap,
        topic_prefix + REGIONAL,
        [
            employment_changed(stranger, orgs["employer"]),
            employment_changed(wrong_check, orgs["employer"]),
            employment_changed(joined["id_number"], "91350100M000100Y44"),  # a bad employer credit code
            wrong_type,
            (None, [("ce_id", b"x")], b"{}"),  # not a CloudEvent at all
            employment_changed(already_there["id_number"], orgs["employer"]),  # already in the employer's union
            employment_changed(joined["id_number"], orgs["employer"]),
        ],
    )
    [item] = await eventually(lambda: transfers_of(t, joined["member_id"]), what="the next message handled")
    assert item["to_org_id"] == orgs["enterprise"]
    dead = await read_topic(stack.bootstrap, topic_prefix + REGIONAL + ".dlq", expect=5, timeout=30)
    reasons = sorted(dead_letter_reason(d.headers) or "" for d in dead)
    assert len(reasons) == 5, reasons
    assert any(r.startswith("DomainError: ") and "not a member" in r for r in reasons), reasons
    assert any("id_number" in r and "check character" in r for r in reasons), reasons
    assert any("employer_credit_code" in r for r in reasons), reasons
    assert any("unsupported event type" in r for r in reasons), reasons
    assert any("missing CloudEvents headers" in r for r in reasons), reasons
    for secret in (stranger, wrong_check, joined["id_number"]):
        assert all(secret not in r for r in reasons)
    assert await transfers_of(t, already_there["member_id"]) == []


async def test_a_regional_system_publishing_with_librdkafka_opens_a_transfer(
    membership_consuming: ServiceUnderTest,
    transfer: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    joined = await join(m, orgs["a"])
    await heard_of(t, [joined["member_id"]], [orgs["federation"]])
    value = json.dumps(
        {
            "id_number": joined["id_number"],
            "employer_credit_code": data.credit_code(),
            "employer_name": "美团",
            "region_code": "310115",
            "industry": "餐饮",
            "effective_date": "2025-04-01",
            "contract_type": "fixed-term",
        },
        ensure_ascii=False,
    ).encode()
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/regional/gd-hrss"),
        ("ce_type", EVENT_TYPE.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json; charset=utf-8"),
    ]
    delivered: list[Any] = []

    def publish() -> None:
        producer = confluent_kafka.Producer(
            {**librdkafka(stack.bootstrap), "client.id": "gd-hrss", "enable.idempotence": False, "acks": "all"}
        )
        producer.produce(
            topic_prefix + REGIONAL,
            value=value,
            key=b"gd-hrss",
            headers=headers,
            on_delivery=lambda err, _msg: delivered.append(err),
        )
        producer.flush(20)

    await asyncio.to_thread(publish)
    assert delivered == [None]
    [item] = await eventually(lambda: transfers_of(t, joined["member_id"]), what="the transfer librdkafka started")
    assert (item["to_org_id"], item["requested_by"]) == (orgs["federation"], "regional:/regional/gd-hrss")


# --- bulk ----------------------------------------------------------------------------------------------


async def test_a_bulk_transfer_reports_its_progress(
    membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest
) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    movers = [await join(m, orgs["federation"], employer_credit_code=orgs["employer"]) for _ in range(4)]
    suspended = await join(m, orgs["federation"])
    await m.post(f"/members/{suspended['member_id']}/suspend", {"reason": "x"})
    await heard_of(t, [j["member_id"] for j in movers], [orgs["enterprise"]])
    await member_status(t, suspended["member_id"], "suspended")
    busy = await requested(t, movers[3]["member_id"], orgs["b"])
    unknown = str(uuid.uuid4())
    ids = [j["member_id"] for j in movers] + [suspended["member_id"], unknown, movers[0]["member_id"]]
    r = await t.post(
        "/transfers/bulk",
        {
            "member_ids": ids,
            "to_org_id": orgs["enterprise"],
            "reason": "unit union founded",
            "requested_by": "county-staff",
        },
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]

    async def finished() -> Any:
        view = (await t.get(f"/transfers/bulk/{batch_id}")).json()
        return view if view["status"] == "finished" else None

    view = await eventually(finished, what="the batch")
    assert (view["total"], view["requested"], view["refused"], view["pending"]) == (6, 3, 3, 0)
    assert {(x["member_id"], x["code"]) for x in view["refusals"]} == {
        (movers[3]["member_id"], "transfer_open"),
        (suspended["member_id"], "member_not_active"),
        (unknown, "member_not_found"),
    }
    assert all(x["reason"] for x in view["refusals"])
    assert [i["member_id"] for i in view["items"]] == ids[:-1]
    for item in view["items"][:3]:
        assert item["status"] == "requested"
        moved = (await t.get(f"/transfers/{item['transfer_id']}")).json()
        assert (moved["to_org_id"], moved["requested_by"], moved["batch_id"]) == (
            orgs["enterprise"],
            "county-staff",
            batch_id,
        )
    # "county-staff" is a label; every event the batch caused names the token's actor
    actors = await t.service.pool.fetch(
        "SELECT DISTINCT metadata->>'actor' AS actor FROM events WHERE stream_id = $1 OR data->>'batch_id' = $2",
        f"batch-{batch_id}",
        batch_id,
    )
    assert [r["actor"] for r in actors] == ["admin:test-admin"]
    assert (await t.get(f"/transfers/{busy}")).json()["status"] == "requested"
    r = await t.post("/transfers/bulk", {"member_ids": ids, "to_org_id": orgs["county"], "reason": "x"})
    assert (r.status_code, r.json()["code"]) == (409, "target_not_accepting")
    r = await t.post("/transfers/bulk", {"member_ids": [], "to_org_id": orgs["b"], "reason": "x"})
    assert r.status_code == 422
    assert (await t.get(f"/transfers/bulk/{uuid.uuid4()}")).status_code == 404


async def test_a_pending_batch_survives_a_restart(
    membership_consuming: ServiceUnderTest, transfer_settings: TransferSettings, all_topics: list[str]
) -> None:
    m = membership_consuming
    orgs = await county_tree(m)
    movers = [await join(m, orgs["a"]) for _ in range(3)]
    idle = {"bulk_poll_interval": 3600.0}
    async with running_transfer(transfer_settings, **idle) as t:
        await heard_of(t, [j["member_id"] for j in movers], [orgs["b"]])
        # recorded but not yet worked on (as if the process died right after the 202)
        async with t.service.pool.acquire() as conn, conn.transaction():
            batch_id = await t.service.transfers.request_bulk(
                conn,
                [uuid.UUID(j["member_id"]) for j in movers],
                uuid.UUID(orgs["b"]),
                "merger",
                "staff",
                Metadata(actor="staff"),
            )
        view = (await t.get(f"/transfers/bulk/{batch_id}")).json()
        assert (view["status"], view["pending"]) == ("pending", 3)
    async with running_transfer(transfer_settings, run_consumers=False, **idle) as t:

        async def finished() -> Any:
            view = (await t.get(f"/transfers/bulk/{batch_id}")).json()
            return view if view["status"] == "finished" else None

        view = await eventually(finished, what="the batch after a restart")
        assert (view["requested"], view["refused"]) == (3, 0)


# --- statistics ----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def test_time_to_complete_statistics(membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest) -> None:
    m, t = membership_consuming, transfer
    orgs = await county_tree(m)
    members = [await join(m, orgs["a"]) for _ in range(4)]
    await heard_of(t, [j["member_id"] for j in members], [orgs["b"]])
    durations = []
    for i, joined in enumerate(members[:3]):
        transfer_id = await requested(t, joined["member_id"], orgs["b"])
        await asyncio.sleep(0.2 * i)
        view = await complete(t, transfer_id)
        requested_at = datetime.fromisoformat(view["requested_at"])
        completed_at = datetime.fromisoformat(view["completed_at"])
        durations.append((completed_at - requested_at).total_seconds())
        assert view["duration_seconds"] == pytest.approx(durations[-1])
    rejected = await requested(t, members[3]["member_id"], orgs["b"])
    await step(t, rejected, "reject", reason="no")
    stats = (await t.get(f"/organizations/{orgs['b']}/transfer-stats")).json()
    assert stats["in"]["count"] == 3
    assert stats["in"]["mean_seconds"] == pytest.approx(statistics.mean(durations))
    assert stats["in"]["p50_seconds"] == pytest.approx(statistics.median(durations))
    assert stats["in"]["p90_seconds"] == pytest.approx(percentile(durations, 0.9))
    assert stats["in"]["by_status"] == {"completed": 3, "rejected": 1}
    assert stats["out"]["count"] == 0
    assert stats["out"]["p50_seconds"] is None
    source = (await t.get(f"/organizations/{orgs['a']}/transfer-stats")).json()
    assert (source["out"]["count"], source["in"]["count"]) == (3, 0)
    assert source["out"]["p90_seconds"] == pytest.approx(stats["in"]["p90_seconds"])
    assert (await t.get(f"/organizations/{uuid.uuid4()}/transfer-stats")).status_code == 404


async def test_a_directory_a_migration_replaced_is_rebuilt_from_the_log_at_start(
    membership_consuming: ServiceUnderTest, transfer_settings: TransferSettings, all_topics: list[str]
) -> None:
    """What an upgrade does: the directory's tables are new and empty, and the migration asks for a rebuild; the
    service refills them from its log (membership's events in the inbox, its own completed transfers) at start."""
    m = membership_consuming
    orgs = await county_tree(m)
    joined = await join(m, orgs["a"])
    async with running_transfer(transfer_settings) as t:
        await heard_of(t, [joined["member_id"]], [orgs["a"], orgs["b"]])
        await complete(t, await requested(t, joined["member_id"], orgs["b"]))
        async with t.service.pool.acquire() as conn:
            before = await conn.fetch("SELECT * FROM directory_members ORDER BY member_id")
            orgs_before = await conn.fetch("SELECT * FROM directory_orgs ORDER BY org_id")
            await conn.execute("DELETE FROM directory_members; DELETE FROM directory_orgs; DELETE FROM directory_moves")
            await conn.execute("INSERT INTO rebuild_requests (name) VALUES ('directory')")
    assert [r["org_id"] for r in before] == [uuid.UUID(orgs["b"])]
    async with running_transfer(transfer_settings) as t, t.service.pool.acquire() as conn:
        after = await conn.fetch("SELECT * FROM directory_members ORDER BY member_id")
        assert [(r["member_id"], r["org_id"], r["status"]) for r in after] == [
            (r["member_id"], r["org_id"], r["status"]) for r in before
        ]
        assert await conn.fetch("SELECT * FROM directory_orgs ORDER BY org_id") == orgs_before
        assert await conn.fetchval("SELECT count(*) FROM rebuild_requests") == 0
        # the member can be moved on from where the rebuilt directory says they are
        again = await requested(t, joined["member_id"], orgs["federation"])
        assert (await t.get(f"/transfers/{again}")).json()["from_org_id"] == orgs["b"]
