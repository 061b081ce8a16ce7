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


def _hybrid(ciphertext: bytes, points: int) -> bytes:
    """The first `points` points re-encoded in libsecp256k1's "hybrid" form (0x06/0x07, x, y): the same ballot."""
    out = bytearray(ciphertext)
    for i in range(0, 65 * points, 65):
        out[i] = 6 + (out[i + 64] & 1)
    return bytes(out)


async def _insider(f: ServiceUnderTest, sql: str, *args: Any) -> None:
    async with f.service.pool.acquire() as conn:
        await conn.execute(sql, *args)


async def test_an_insiders_copies_of_a_ballot_are_refused_at_the_count(
    membership: ServiceUnderTest, feedback: ServiceUnderTest
) -> None:
    """Issue 30, finding 1: a ballot re-encoded (hybrid points) has another receipt and the same vote; a byte copy
    has the same R. An insider with write access adds such copies, with register rows for two abstainers."""
    orgs, voters = await township_with_members(membership, 9)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    r = await feedback.post(
        "/elections", {"org_id": orgs["township"], "title": "第五届工会委员会", "body": "committee", "seats": 2}
    )
    election_id = r.json()["election_id"]
    a, b, c = voters[:3]
    for candidate in (a, b, c):
        assert (
            await feedback.post(f"/elections/{election_id}/candidates", {"member_id": candidate})
        ).status_code == 201
    assert (await feedback.post(f"/elections/{election_id}/candidates/confirm")).status_code == 200
    await open_round(feedback, election_id)
    receipts = []
    for voter, approve in zip(voters, [[a, b], [a, b], [a, c], [b, c], [b, c], [c], [c]], strict=False):
        status, body = await ballot(feedback, election_id, voter, approve)
        assert status == 201, body
        receipts.append(body["receipt"])
    async with feedback.service.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT ciphertext, proof FROM election_sealed WHERE election_id = $1::uuid", election_id
        )
    [(ciphertext, proof)] = [
        (r["ciphertext"], r["proof"]) for r in rows if hashlib.sha256(r["ciphertext"]).hexdigest() == receipts[0]
    ]
    insert = "INSERT INTO election_sealed (election_id, round, ciphertext, proof) VALUES ($1::uuid, 1, $2, $3)"
    register = "INSERT INTO election_voted (election_id, round, voter_id) VALUES ($1::uuid, 1, $2::uuid)"
    for voter in voters[7:]:
        await _insider(feedback, register, election_id, voter)

    remove = "DELETE FROM election_sealed WHERE election_id = $1::uuid AND ciphertext = $2"
    for copies in ([_hybrid(ciphertext, 4), _hybrid(ciphertext, 1)], [ciphertext, ciphertext]):
        for copy_ in copies:
            await _insider(feedback, insert, election_id, copy_, proof)
        r = await feedback.post(f"/elections/{election_id}/close")
        assert (r.status_code, r.json().get("code")) == (409, "count_refused"), r.text  # not the 5/6/5
        record = (await feedback.get(f"/elections/{election_id}")).json()
        assert record["rounds"][0]["count"] is None  # nothing published
        assert record["status"] == "voting"
        for copy_ in {*copies, ciphertext}:  # the insider takes their rows back (and the original with a byte copy)
            await _insider(feedback, remove, election_id, copy_)
        await _insider(feedback, insert, election_id, ciphertext, proof)

    # without the copies (and without the abstainers' rows) the honest count goes through, and the audit agrees
    await _insider(feedback, "DELETE FROM election_voted WHERE voter_id = ANY($1::uuid[])", voters[7:])
    r = await feedback.post(f"/elections/{election_id}/close")
    assert r.status_code == 200, r.text
    record, sets = await published(feedback, election_id)
    assert record["rounds"][0]["count"]["tally"] == {a: 3, b: 4, c: 5}
    assert record["status"] == "between_rounds"  # c has 5 of 9 entitled; a round for the last seat is to come
    assert audit(record, sets) == [c]


async def test_a_register_with_more_voters_than_the_electorate_is_refused_at_the_count(
    membership: ServiceUnderTest, feedback: ServiceUnderTest
) -> None:
    """Issue 30, finding 2: 3 entitled, 5 ballots; the close refuses, nothing is published."""
    orgs, voters = await township_with_members(membership, 3)
    await directory_knows(feedback, dict.fromkeys(voters, "active"), orgs.values())
    r = await feedback.post("/elections", {"org_id": orgs["township"], "title": "主席", "body": "chair", "seats": 1})
    election_id = r.json()["election_id"]
    assert (await feedback.post(f"/elections/{election_id}/candidates", {"member_id": voters[0]})).status_code == 201
    assert (await feedback.post(f"/elections/{election_id}/candidates/confirm")).status_code == 200
    await open_round(feedback, election_id)
    for voter in voters:
        assert (await ballot(feedback, election_id, voter, [voters[0]]))[0] == 201
    record = (await feedback.get(f"/elections/{election_id}")).json()
    keys = [bytes.fromhex(k) for k in record["rounds"][0]["public_keys"]]
    for _ in range(2):  # anyone can seal a valid ballot under the published keys; the insider adds register rows
        extra = election_sealing.seal(uuid.UUID(election_id), 1, keys, [1], 1)
        await _insider(
            feedback,
            "INSERT INTO election_voted (election_id, round, voter_id) VALUES ($1::uuid, 1, $2)",
            election_id,
            uuid.uuid4(),
        )
        await _insider(
            feedback,
            "INSERT INTO election_sealed (election_id, round, ciphertext, proof) VALUES ($1::uuid, 1, $2, $3)",
            election_id,
            extra.ciphertext,
            extra.proof,
        )
    r = await feedback.post(f"/elections/{election_id}/close")
    assert (r.status_code, r.json().get("code")) == (409, "count_refused"), r.text
    assert (await feedback.get(f"/elections/{election_id}")).json()["rounds"][0]["count"] is None
