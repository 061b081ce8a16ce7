"""A union election through the feedback service's API, re-counted by an outsider from the published data alone."""

from __future__ import annotations

import copy
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.feedback import election_sealing
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_feedback import directory_knows, township_with_members
from tests.support import auth
from tests.support.election_audit import AuditError, audit


async def ballot(f: ServiceUnderTest, election_id: str, voter: str, approve: list[str]) -> tuple[int, dict[str, Any]]:
    r = await f.post(
        f"/elections/{election_id}/ballots", {"approve": approve}, headers=auth.bearer("member", member_id=voter)
    )
    return r.status_code, r.json()


async def open_round(f: ServiceUnderTest, election_id: str) -> int:
    closes = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await f.post(f"/elections/{election_id}/rounds", {"closes_at": closes})
    assert r.status_code == 201, r.text
    return int(r.json()["round"])


async def published(f: ServiceUnderTest, election_id: str) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    record = (await f.get(f"/elections/{election_id}")).json()
    sets = {}
    for round_view in record["rounds"]:
        r = await f.get(f"/elections/{election_id}/rounds/{round_view['round']}/ballots")
        assert r.status_code == 200, r.text
        sets[round_view["round"]] = r.json()
    return record, sets


async def test_a_committee_election_with_a_tie_a_further_round_receipts_and_an_outside_recount(
    membership: ServiceUnderTest, feedback: ServiceUnderTest
) -> None:
    orgs, voters = await township_with_members(membership, 7)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    r = await feedback.post(
        "/elections", {"org_id": orgs["township"], "title": "第五届工会委员会", "body": "committee", "seats": 2}
    )
    assert r.status_code == 201, r.text
    election_id = r.json()["election_id"]
    a, b, c = voters[:3]
    for candidate in (a, b):
        assert (
            await feedback.post(f"/elections/{election_id}/candidates", {"member_id": candidate})
        ).status_code == 201
    r = await feedback.post(f"/elections/{election_id}/candidates/confirm")
    assert (r.status_code, r.json()["code"]) == (409, "margin_too_small")  # 等额 for a committee
    r = await feedback.post(f"/elections/{election_id}/candidates", {"member_id": orgs["sibling"]})
    assert (r.status_code, r.json()["code"]) == (409, "not_eligible")
    assert (await feedback.post(f"/elections/{election_id}/candidates", {"member_id": c})).status_code == 201
    assert (await feedback.post(f"/elections/{election_id}/candidates/confirm")).status_code == 200

    assert await open_round(feedback, election_id) == 1
    record = (await feedback.get(f"/elections/{election_id}")).json()
    assert record["eligible"] == 7
    assert len(record["electorate_member_nos"]) == 7

    # A 5, B 4, C 4 of 7 entitled: A is elected; B and C tie for the last seat with more than half each
    round_1 = [[a, b], [a, b], [a, c], [a, c], [b, c], [b, c], [a]]
    status, body = await ballot(feedback, election_id, voters[0], [a, b, c])
    assert status == 422, body  # more approvals than seats: refused, and nothing left behind
    receipts = {}
    for voter, approve in zip(voters, round_1, strict=True):
        status, body = await ballot(feedback, election_id, voter, approve)
        assert status == 201, body
        assert set(body) == {"election_id", "receipt"}
        receipts[voter] = body["receipt"]
    assert (await ballot(feedback, election_id, voters[0], [a]))[1]["code"] == "already_voted"
    r = await feedback.get(f"/elections/{election_id}/receipts/{receipts[voters[0]]}")
    assert r.json()["published"] is False  # not before the count publishes the set

    r = await feedback.post(f"/elections/{election_id}/close")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "between_rounds"
    assert await open_round(feedback, election_id) == 2
    for voter, approve in zip(voters, [[b], [b], [b], [b], [b], [c], []], strict=True):
        assert (await ballot(feedback, election_id, voter, approve))[0] == 201
    r = await feedback.post(f"/elections/{election_id}/close")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "concluded"
    assert r.json()["elected"] == [a, b]

    record, sets = await published(feedback, election_id)
    [first, second] = record["rounds"]
    assert first["count"]["tally"] == {a: 5, b: 4, c: 4}
    assert first["count"]["elected"] == [a]
    assert sorted(first["count"]["tied"]) == sorted([b, c])
    assert second["count"]["tally"] == {b: 5, c: 1}
    assert record["elected"] == [a, b]

    # the receipt check: the voter finds their ballot; the answer and the ballot set say nothing about the vote
    mine = receipts[voters[6]]
    r = await feedback.get(f"/elections/{election_id}/receipts/{mine}")
    assert r.json() == {"election_id": election_id, "receipt": mine, "published": True, "round": 1}
    entry = next(x for x in sets[1]["ballots"] if x["receipt"] == mine)
    assert set(entry) == {"receipt", "ciphertext", "proof"}
    assert len({len(x["ciphertext"]) for x in sets[1]["ballots"]}) == 1  # every ballot the same size
    assert hashlib.sha256(bytes.fromhex(entry["ciphertext"])).hexdigest() == mine
    assert (await feedback.get(f"/elections/{election_id}/receipts/{'0' * 64}")).json()["published"] is False
    assert await _no_ballot_in_the_log(feedback, election_id)

    # an outsider re-counts from the published data alone, and gets the published outcome
    assert audit(record, sets) == [a, b]

    # a ballot swapped for another valid one, with its receipt recomputed: the set is not the counted one
    keys = [bytes.fromhex(k) for k in sets[1]["public_keys"]]
    forged = election_sealing.seal(uuid.UUID(election_id), 1, keys, [0, 0, 1], 2)
    tampered = copy.deepcopy(sets)
    tampered[1]["ballots"][0] = {
        "receipt": forged.receipt,
        "ciphertext": forged.ciphertext.hex(),
        "proof": forged.proof.hex(),
    }
    with pytest.raises(AuditError, match="not the one the count published"):
        audit(record, tampered)
    # a tally changed in the record: the proofs no longer give it
    changed = copy.deepcopy(record)
    changed["rounds"][0]["count"]["tally"][c] = 5
    with pytest.raises(AuditError, match="re-count"):
        audit(changed, sets)
    # a ballot dropped
    dropped = copy.deepcopy(sets)
    dropped[2]["ballots"].pop()
    with pytest.raises(AuditError, match="published ballots for a turnout"):
        audit(record, dropped)


async def _no_ballot_in_the_log(f: ServiceUnderTest, election_id: str) -> bool:
    async with f.service.pool.acquire() as conn:
        types = await conn.fetch(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version", f"election-{election_id}"
        )
        sealed = await conn.fetchval("SELECT count(*) FROM election_sealed WHERE election_id = $1::uuid", election_id)
    names = [t["event_type"] for t in types]
    return sealed == 0 and not any("Ballot" in n for n in names) and len(names) == 1 + 3 + 1 + 2 + 2 + 1


async def test_a_round_below_the_quorum_is_counted_at_its_deadline_without_opening_a_ballot(
    membership: ServiceUnderTest, feedback: ServiceUnderTest
) -> None:
    orgs, voters = await township_with_members(membership, 4)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    r = await feedback.post("/elections", {"org_id": orgs["township"], "title": "主席", "body": "chair", "seats": 1})
    election_id = r.json()["election_id"]
    assert (await feedback.post(f"/elections/{election_id}/candidates", {"member_id": voters[0]})).status_code == 201
    assert (await feedback.post(f"/elections/{election_id}/candidates/confirm")).status_code == 200  # 等额 for a chair
    await open_round(feedback, election_id)
    for voter in voters[:2]:  # 2 of 4: below two thirds
        assert (await ballot(feedback, election_id, voter, [voters[0]]))[0] == 201
    feedback.service.clock.offset = timedelta(hours=2)
    assert (await ballot(feedback, election_id, voters[2], [voters[0]]))[1]["code"] == "election_closed"
    assert await feedback.service.count_overdue_rounds() == 1
    record, sets = await published(feedback, election_id)
    [counted] = [r["count"] for r in record["rounds"]]
    assert counted["quorum_met"] is False
    assert counted["tally"] == {}
    assert counted["turnout"] == 2
    assert record["status"] == "between_rounds"
    assert sets[1]["ballots"] == []  # discarded unread
    assert audit(record, sets) == []
