"""Membership through its HTTP API, against the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import ServiceUnderTest
from tests.support import data


async def make_org(m: ServiceUnderTest, type_: str = "township", parent: str | None = None, **extra: object) -> str:
    body = {"name": f"{type_} union", "type": type_, "region_code": "310115", "parent_id": parent, **extra}
    r = await m.post("/organizations", body)
    assert r.status_code == 201, r.text
    return str(r.json()["org_id"])


async def tree(m: ServiceUnderTest) -> dict[str, str]:
    county = await make_org(m, "county")
    township = await make_org(m, "township", county)
    federation = await make_org(m, "federation", county, subtype="regional")
    sibling = await make_org(m, "township", county)
    return {"county": county, "township": township, "federation": federation, "sibling": sibling}


async def join(m: ServiceUnderTest, org_id: str, **overrides: object) -> dict[str, str]:
    body = data.application(org_id, **overrides)
    r = await m.post("/applications", body)
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    r = await m.post(f"/applications/{application_id}/approve", {"reviewer": "staff-1"})
    assert r.status_code == 200, r.text
    return {
        **r.json(),
        "application_id": application_id,
        "id_number": str(body["id_number"]),
        "phone": str(body["phone"]),
        "name": str(body["name"]),
    }


# --- organisations ---


async def test_organisation_types_and_who_holds_members(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    county = (await membership.get(f"/organizations/{orgs['county']}")).json()
    assert county["accepts_members"] is False
    assert (await membership.get(f"/organizations/{orgs['township']}")).json()["accepts_members"] is True
    r = await membership.post("/applications", data.application(orgs["county"]))
    assert r.status_code == 409
    assert r.json()["code"] == "target_not_accepting"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"type": "joint"}, "subtype", "needs a subtype"),
        ({"type": "joint", "subtype": "regional"}, "subtype", "must be one of"),
        ({"type": "enterprise"}, "credit_code", "unified social credit code"),
        ({"type": "enterprise", "credit_code": "91350100M000100Y44"}, "credit_code", "check character"),
        ({"type": "township", "region_code": "990101"}, "region_code", ""),
        ({"type": "township", "parent_id": str(uuid.uuid4())}, "parent_id", "does not exist"),
        ({"type": "guild"}, "type", "Input should be"),
    ],
)
async def test_invalid_organisations_get_422_with_field_and_reason(
    membership: ServiceUnderTest,
    body: dict[str, object],
    field: str,
    reason: str,
) -> None:
    r = await membership.post("/organizations", {"name": "x", "region_code": "310115", **body})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


async def test_an_enterprise_union_with_a_valid_credit_code(membership: ServiceUnderTest) -> None:
    org = await make_org(membership, "enterprise", credit_code="91350100M000100Y43")
    assert (await membership.get(f"/organizations/{org}")).json()["credit_code"] == "91350100M000100Y43"


async def test_dissolution_only_when_empty(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    joined = await join(membership, orgs["township"])
    r = await membership.post(f"/organizations/{orgs['township']}/dissolve")
    assert (r.status_code, r.json()["code"]) == (409, "has_members")
    await membership.post(f"/members/{joined['member_id']}/terminate", {"reason": "withdrew"})
    r = await membership.post(f"/organizations/{orgs['township']}/dissolve")
    assert r.status_code == 200, r.text
    assert (await membership.get(f"/organizations/{orgs['township']}")).json()["status"] == "dissolved"
    r = await membership.post("/applications", data.application(orgs["township"]))
    assert (r.status_code, r.json()["code"]) == (409, "org_dissolved")


# --- applications and join once ---


async def test_an_approved_application_makes_a_member(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    joined = await join(
        membership, orgs["township"], name="𠮷田 春", household_type="rural", employment_type="dispatched"
    )
    assert joined["member_no"].startswith("310115-")
    member = (await membership.get(f"/members/{joined['member_id']}")).json()
    assert member["name"] == "𠮷田 春"
    assert member["id_number_masked"] == joined["id_number"][:6] + "********" + joined["id_number"][-4:]
    assert member["status"] == "active"
    assert member["org_id"] == orgs["township"]
    assert member["household_type"] == "rural"
    assert member["joined_at"] == datetime.now(UTC).date().isoformat()
    application = (await membership.get(f"/applications/{joined['application_id']}")).json()
    assert application["status"] == "approved"
    assert application["member_id"] == joined["member_id"]


async def test_a_rejected_application_keeps_its_reason(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    r = await membership.post("/applications", data.application(orgs["township"]))
    application_id = r.json()["application_id"]
    r = await membership.post(f"/applications/{application_id}/reject", {"reviewer": "staff-2", "reason": "不在本单位"})
    assert r.status_code == 200
    view = (await membership.get(f"/applications/{application_id}")).json()
    assert (view["status"], view["reason"], view["member_id"]) == ("rejected", "不在本单位", None)
    r = await membership.post(f"/applications/{application_id}/approve", {"reviewer": "staff-2"})
    assert (r.status_code, r.json()["code"]) == (409, "application_not_pending")


async def test_join_once_a_member_cannot_apply_again_anywhere(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    joined = await join(membership, orgs["township"])
    await membership.post(f"/members/{joined['member_id']}/terminate", {"reason": "withdrew"})
    for org in (orgs["township"], orgs["federation"]):
        r = await membership.post("/applications", data.application(org, id_number=joined["id_number"].lower()))
        assert (r.status_code, r.json()["code"]) == (409, "already_member")


async def test_two_simultaneous_applications_cannot_both_be_approved(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    id_number = data.identity_number()
    ids = []
    for org in (orgs["township"], orgs["federation"]):
        r = await membership.post("/applications", data.application(org, id_number=id_number))
        assert r.status_code == 201
        ids.append(r.json()["application_id"])
    results = await asyncio.gather(*(membership.post(f"/applications/{a}/approve", {"reviewer": "s"}) for a in ids))
    assert sorted(r.status_code for r in results) == [200, 409]
    assert [r.json()["code"] for r in results if r.status_code == 409] == ["already_member"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id_number", "110105194912310021", "check character should be X"),
        ("id_number", "110105194913310028", "birth date"),
        ("id_number", "11010519491231002", "18"),
        ("phone", "12345678901", ""),
        ("name", "张\u200b伟", "invisible"),
        ("employment_type", "slave", "Input should be"),
    ],
)
async def test_invalid_applications_get_422_naming_the_field(
    membership: ServiceUnderTest,
    field: str,
    value: str,
    reason: str,
) -> None:
    orgs = await tree(membership)
    r = await membership.post("/applications", data.application(orgs["township"], **{field: value}))
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


# --- member states ---


async def test_suspend_reinstate_terminate(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    member_id = (await join(membership, orgs["township"]))["member_id"]
    steps = [
        ("reinstate", 409, "member_not_suspended"),
        ("suspend", 200, "suspended"),
        ("suspend", 409, "member_not_active"),
        ("reinstate", 200, "active"),
        ("terminate", 200, "terminated"),
        ("terminate", 409, "member_terminated"),
        ("reinstate", 409, "member_not_suspended"),
    ]
    for action, status, outcome in steps:
        r = await membership.post(f"/members/{member_id}/{action}", {"reason": "test"})
        assert r.status_code == status, (action, r.text)
        assert (r.json()["status"] if status == 200 else r.json()["code"]) == outcome
    r = await membership.post(f"/members/{uuid.uuid4()}/suspend", {"reason": "x"})
    assert r.status_code == 404


async def test_the_member_as_they_were_at_a_past_time(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    member_id = (await join(membership, orgs["township"]))["member_id"]
    before_suspension = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await membership.post(f"/members/{member_id}/suspend", {"reason": "arrears"})
    now = (await membership.get(f"/members/{member_id}")).json()
    then = (await membership.get(f"/members/{member_id}", params={"as_of": before_suspension.isoformat()})).json()
    assert (now["status"], then["status"]) == ("suspended", "active")
    assert then["member_no"] == now["member_no"]
    r = await membership.get(f"/members/{member_id}", params={"as_of": "2000-01-01T00:00:00Z"})
    assert r.status_code == 404


# --- read models ---


async def test_the_roster_pages_by_cursor_and_filters_by_status(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    members = [await join(membership, orgs["township"]) for _ in range(7)]
    await membership.post(f"/members/{members[0]['member_id']}/suspend", {"reason": "x"})
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await membership.get(f"/organizations/{orgs['township']}/members", params=params)).json()
        seen.extend(i["member_id"] for i in page["items"])
        assert len(page["items"]) <= 3
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(m["member_id"] for m in members)
    suspended = (
        await membership.get(f"/organizations/{orgs['township']}/members", params={"status": "suspended"})
    ).json()
    assert [i["member_id"] for i in suspended["items"]] == [members[0]["member_id"]]
    assert all("id_number" not in i and i["id_number_masked"].count("*") == 8 for i in seen_items(page))


def seen_items(page: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    return page["items"]


async def test_counts_for_an_organisation_and_its_subtree(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    await join(membership, orgs["township"], household_type="rural", employment_type="platform")
    await join(membership, orgs["township"], household_type="urban", employment_type="regular")
    suspended = await join(membership, orgs["federation"], household_type="rural", employment_type="dispatched")
    await membership.post(f"/members/{suspended['member_id']}/suspend", {"reason": "x"})
    retired = await join(membership, orgs["federation"], household_type="urban", employment_type="regular")
    r = await membership.post(f"/members/{retired['member_id']}/retain", {"reason": "retired"})
    assert r.status_code == 200, r.text
    county = (await membership.get(f"/organizations/{orgs['county']}/stats")).json()
    assert county["total"] == 4  # every status is counted; the breakdowns below are of active members
    assert county["by_status"] == {"active": 2, "suspended": 1, "terminated": 0, "retained": 1, "lapsed": 0}
    assert county["by_household_type"] == {"urban": 1, "rural": 1}
    assert county["by_employment_type"] == {"regular": 1, "dispatched": 0, "flexible": 0, "platform": 1}
    township = (await membership.get(f"/organizations/{orgs['township']}/stats", params={"subtree": False})).json()
    assert township["total"] == 2
    assert (await membership.get(f"/organizations/{orgs['county']}/stats", params={"subtree": False})).json()[
        "total"
    ] == 0
    assert (await membership.get(f"/organizations/{orgs['township']}")).json()["member_count"] == 2


async def test_a_founding_suggestion_at_the_threshold(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    employer = data.credit_code()
    for _ in range(2):
        await join(membership, orgs["federation"], employer_credit_code=employer, employer_name="顺丰速运")
    assert (await membership.get("/founding-suggestions", params={"org_id": orgs["federation"]})).json()["items"] == []
    await join(membership, orgs["federation"], employer_credit_code=employer, employer_name="顺丰速运")
    await join(membership, orgs["federation"], employer_credit_code=employer, employer_name="顺丰速运")
    [suggestion] = (await membership.get("/founding-suggestions", params={"org_id": orgs["federation"]})).json()[
        "items"
    ]
    assert suggestion["employer_credit_code"] == employer
    assert suggestion["active_members"] == 3  # raised once, when the third joined
    # a township is not a federation: its members of one employer suggest nothing
    for _ in range(3):
        await join(membership, orgs["township"], employer_credit_code=data.credit_code())
    assert len((await membership.get("/founding-suggestions")).json()["items"]) == 1


# --- idempotency ---


async def test_a_retried_command_with_the_same_key_has_one_effect(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    body = data.application(orgs["township"])
    first = await membership.post("/applications", body, headers={"Idempotency-Key": "k-1"})
    again = await membership.post("/applications", body, headers={"Idempotency-Key": "k-1"})
    assert first.json() == again.json()
    application_id = first.json()["application_id"]
    approvals = await asyncio.gather(
        *(
            membership.post(
                f"/applications/{application_id}/approve", {"reviewer": "s"}, headers={"Idempotency-Key": "a"}
            )
            for _ in range(3)
        )
    )
    assert {r.status_code for r in approvals} == {200}
    assert len({r.json()["member_no"] for r in approvals}) == 1
    other = await membership.post(
        "/applications", data.application(orgs["township"]), headers={"Idempotency-Key": "k-1"}
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


# --- erasure and personal data ---


async def test_erasure_leaves_an_anonymous_history(membership: ServiceUnderTest) -> None:
    orgs = await tree(membership)
    joined = await join(membership, orgs["township"])
    member_id = joined["member_id"]
    r = (
        await membership.request_delete(f"/members/{member_id}/personal-data")
        if False
        else await membership.http.delete(f"/members/{member_id}/personal-data")
    )
    assert (r.status_code, r.json()["code"]) == (409, "member_not_terminated")
    await membership.post(f"/members/{member_id}/terminate", {"reason": "left the country"})
    r = await membership.http.delete(f"/members/{member_id}/personal-data")
    assert r.status_code == 200
    member = (await membership.get(f"/members/{member_id}")).json()
    assert (member["name"], member["id_number_masked"], member["phone_masked"]) == (None, None, None)
    assert member["member_no"] == joined["member_no"]
    assert member["erased"] is True
    history = (await membership.get(f"/members/{member_id}/history")).json()["events"]
    assert [e["event"] for e in history] == [
        "ApplicationSubmitted",
        "ApplicationApproved",
        "MemberJoined",
        "MemberTerminated",
        "PersonalDataErased",
    ]
    everything = json.dumps(
        [
            history,
            member,
            (
                await membership.get(f"/organizations/{orgs['township']}/members", params={"status": "terminated"})
            ).json(),
        ],
        ensure_ascii=False,
    )
    for secret in (joined["name"], joined["id_number"], joined["phone"], joined["id_number"][-4:] + '"'):
        assert secret not in everything
    async with membership.service.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM subject_keys WHERE subject_id = $1", uuid.UUID(member_id)) == 0
        names = await conn.fetch(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version", f"member-{member_id}"
        )
        assert [r["event_type"] for r in names] == [
            "MemberIdentityIndexed",  # for the restricted topic (transfer's matching)
            "MemberJoined",
            "MemberTerminated",
            "MemberIdentityIndexErased",  # replaces it there
            "PersonalDataErased",
        ]
    # the person's join-once record stays: they still cannot join again
    r = await membership.post("/applications", data.application(orgs["township"], id_number=joined["id_number"]))
    assert r.json()["code"] == "already_member"


# --- hostile input (found by tests/integration/test_fuzz.py) ---


async def test_a_nul_character_in_any_input_gets_422_naming_the_field(membership: ServiceUnderTest) -> None:
    # PostgreSQL text cannot hold U+0000: it used to reach the event store and answer 500
    county = await make_org(membership, "county")
    body = {"name": "工会\u0000", "type": "county", "region_code": "310115"}
    for r, field in [
        (await membership.post("/organizations", body), "name"),
        (await membership.post("/organizations", {**body, "name": "x", "industry": ["\u0000"]}), "industry.0"),
        (await membership.post(f"/organizations/{county}/dissolve", {"reason": "a\u0000"}), "reason"),
        (await membership.get(f"/organizations/{county}/members", params={"cursor": "\u0000"}), "query.cursor"),
    ]:
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": field, "reason": "contains a NUL character (U+0000), which text cannot hold"}
        ]
    # an escaped backslash before "u0000" is text like any other
    r = await membership.post("/organizations", {**body, "name": "工会\\u0000"})
    assert r.status_code == 201, r.text


async def test_a_cursor_that_decodes_to_a_nul_gets_422(membership: ServiceUnderTest) -> None:
    org = await make_org(membership)
    r = await membership.get(f"/organizations/{org}/members", params={"cursor": "AA=="})  # base64 of one NUL byte
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")


async def test_as_of_without_a_time_zone_gets_422(membership: ServiceUnderTest) -> None:
    # a naive time used to be compared with the events' aware times: TypeError, 500
    org = await make_org(membership)
    member_id = (await join(membership, org))["member_id"]
    r = await membership.get(f"/members/{member_id}", params={"as_of": "2020-01-01T00:00:00"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "query.as_of"
    r = await membership.get(f"/members/{member_id}", params={"as_of": "2020-01-01T00:00:00+08:00"})
    assert (r.status_code, r.json()["code"]) == (404, "not_yet_member")


async def test_an_idempotency_key_longer_than_255_characters_gets_422(membership: ServiceUnderTest) -> None:
    # the key is indexed: a long random one used to exceed PostgreSQL's index row limit, 500
    org = await make_org(membership, "county")
    long_key = "".join(uuid.uuid4().hex for _ in range(200))  # random: PostgreSQL cannot compress it below the limit
    r = await membership.post(f"/organizations/{org}/dissolve", headers={"Idempotency-Key": long_key})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "header.idempotency-key"
    key = uuid.uuid4().hex * 8  # 256 is too long by one; 255 is fine
    r = await membership.post(f"/organizations/{org}/dissolve", headers={"Idempotency-Key": key[:255]})
    assert r.status_code == 200, r.text


async def test_the_published_422_schema_is_the_body_sent(membership: ServiceUnderTest) -> None:
    # FastAPI documents {"detail": [...]} for 422; the app answers {code, errors, detail}
    schemas = (await membership.get("/openapi.json")).json()["components"]["schemas"]
    published = schemas["HTTPValidationError"]
    assert "ValidationError" not in schemas
    r = await membership.post("/organizations", {"name": "x", "type": "county", "region_code": "99"})
    assert r.status_code == 422
    sent = r.json()
    assert set(published["required"]) <= set(sent) <= set(published["properties"])
    assert isinstance(sent["detail"], str)
    assert all(set(e) == {"field", "reason"} for e in sent["errors"])
