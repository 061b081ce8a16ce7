"""Membership and its topics: no personal data leaves in clear; consumed events move members and fill the dossier."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest

from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_membership import join, tree
from tests.support import data
from tests.support.kafka import produce, read_topic


async def test_no_identity_number_or_phone_in_clear_on_the_topic_in_the_events_or_in_logs(
    membership: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    orgs = await tree(membership)
    people = [await join(membership, orgs["township"], name="欧阳娜娜") for _ in range(3)]
    await membership.post(f"/members/{people[0]['member_id']}/suspend", {"reason": "x"})
    bad = await membership.post("/applications", data.application(orgs["township"], id_number=people[1]["id_number"]))
    assert bad.status_code == 409
    records = await read_topic(stack.bootstrap, f"{topic_prefix}union.membership.v1", expect=4 + 3 * 3 + 1)
    topic_text = b"\n".join(r.value + b"".join(v for _, v in r.headers) for r in records).decode()
    async with membership.service.pool.acquire() as conn:
        stored = "\n".join(
            r["data"] + r["metadata"] for r in await conn.fetch("SELECT data::text, metadata::text FROM events")
        )
    logs = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "MemberJoined" in topic_text  # we read the right things
    assert "id_number_enc" in stored
    for person in people:
        for secret in (person["id_number"], person["phone"], person["id_number"][6:14], "欧阳娜娜"):
            assert secret not in topic_text
            assert secret not in stored
            assert secret not in logs


def transfer_completed(
    member_id: str, to_org_id: str, from_org_id: str
) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
    transfer_id = str(uuid.uuid4())
    return Envelope(
        id=uuid.uuid4(),
        source="/union/transfer",
        type="union.transfer.TransferCompleted.v1",
        subject=f"transfer-{transfer_id}",
        time=datetime.now(UTC),
        partitionkey=member_id,
        data={"transfer_id": transfer_id, "member_id": member_id, "from_org_id": from_org_id, "to_org_id": to_org_id},
    ).to_kafka()


async def wait_until(check, timeout: float = 30):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := await check()):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return result


async def test_a_completed_transfer_moves_the_member_and_enters_the_dossier(
    membership_consuming: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m = membership_consuming
    orgs = await tree(m)
    joined = await join(m, orgs["township"])
    message = transfer_completed(joined["member_id"], orgs["federation"], orgs["township"])
    await produce(stack.bootstrap, f"{topic_prefix}union.transfer.v1", [message, message])  # redelivered too

    async def moved() -> bool:
        return (await m.get(f"/members/{joined['member_id']}")).json()["org_id"] == orgs["federation"]

    await wait_until(moved)
    member = (await m.get(f"/members/{joined['member_id']}")).json()
    assert (member["member_no"], member["joined_at"]) == (joined["member_no"], datetime.now(UTC).date().isoformat())
    events = (await m.get(f"/members/{joined['member_id']}/history")).json()["events"]
    names = [e["event"] for e in events]
    assert names == [
        "ApplicationSubmitted",
        "ApplicationApproved",
        "MemberJoined",
        "TransferCompleted",
        "MemberOrganizationChanged",
    ]
    assert events[3]["source"] == "/union/transfer"
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)


async def test_a_transfer_to_an_unknown_organisation_is_dead_lettered(
    membership_consuming: ServiceUnderTest,
    stack: Stack,
    topic_prefix: str,
) -> None:
    m = membership_consuming
    orgs = await tree(m)
    joined = await join(m, orgs["township"])
    await produce(
        stack.bootstrap,
        f"{topic_prefix}union.transfer.v1",
        [
            transfer_completed(joined["member_id"], str(uuid.uuid4()), orgs["township"]),
            transfer_completed(joined["member_id"], orgs["federation"], orgs["township"]),
        ],
    )
    [dead] = await read_topic(stack.bootstrap, f"{topic_prefix}union.transfer.v1.dlq", expect=1, timeout=30)
    assert dict(dead.headers)["dlq_error"].decode().startswith("NotFoundError: organization")

    async def moved() -> bool:
        return (await m.get(f"/members/{joined['member_id']}")).json()["org_id"] == orgs["federation"]

    await wait_until(moved)
