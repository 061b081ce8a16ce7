"""Membership and its topics: no personal data leaves in clear; consumed events move members and fill the dossier."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import confluent_kafka
import pytest

from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.integration.test_membership import join, make_org, tree
from tests.integration.test_transfer import employment_changed
from tests.support import data
from tests.support.kafka import librdkafka, produce, read_topic

PUBLIC_TOPICS = ["union.membership.v1", "union.transfer.v1", "union.servicecard.v1", "union.feedback.v1"]
RESTRICTED_TOPIC = "union.membership.restricted.v1"


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


# --- the blind index stays off the public topics ------------------------------------------------------------


def read_with_librdkafka(bootstrap: str, topics: list[str], partitions: int = 3) -> list[confluent_kafka.Message]:
    """Every message of `topics` from the beginning, as a regional system reads them: librdkafka, its own group."""
    consumer = confluent_kafka.Consumer(
        {**librdkafka(bootstrap), "group.id": f"regional-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    start = confluent_kafka.OFFSET_BEGINNING
    consumer.assign([confluent_kafka.TopicPartition(t, p, start) for t in topics for p in range(partitions)])
    messages: list[confluent_kafka.Message] = []
    quiet = 0
    while quiet < 3:  # until three polls in a row bring nothing
        batch = [m for m in consumer.consume(num_messages=500, timeout=1) if m.error() is None]
        messages += batch
        quiet = 0 if batch else quiet + 1
    consumer.close()
    return messages


def text_of(message: confluent_kafka.Message) -> str:
    parts = [message.key() or b"", message.value() or b"", *(v or b"" for _, v in message.headers() or [])]
    return b"\n".join(parts).decode(errors="replace")


def ce(message: confluent_kafka.Message, name: str) -> str | None:
    return next((v.decode() for k, v in message.headers() or [] if k == f"ce_{name}"), None)


@pytest.fixture
async def transfer_consuming(
    stack: Stack, membership_settings: Any, unique: str, all_topics: list[str]
) -> AsyncIterator[Any]:
    from services.transfer.main import build_app  # noqa: PLC0415
    from services.transfer.service import TransferSettings  # noqa: PLC0415

    common = {"database_url": membership_settings.database_url, **stack.settings()}
    settings = TransferSettings(
        **common,
        db_schema=f"x_{unique}",
        topic_prefix=membership_settings.topic_prefix,
        relay_poll_interval=0.05,
        blind_index_key=membership_settings.blind_index_key,
    )
    async with serve_in_process(build_app(settings)) as running:
        yield running


async def test_no_public_topic_carries_the_blind_index_as_an_independent_client_reads_them(
    membership: ServiceUnderTest, transfer_consuming: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    m, t = membership, transfer_consuming
    orgs = await tree(m)
    employer = data.credit_code()
    enterprise = await make_org(m, "enterprise", orgs["county"], credit_code=employer)
    people = [await join(m, orgs["township"]) for _ in range(4)]
    mover, leaver = people[0], people[1]
    await m.post(f"/members/{people[2]['member_id']}/suspend", {"reason": "arrears"})
    # once transfer has read all of that (a read with the last token waits for it), a regional system names the
    # mover by identity number: transfer matches them by the blind index and opens a transfer (TransferRequested,
    # on the public transfer topic)
    caught_up = await t.get(f"/organizations/{enterprise}/transfers", params={"after": people[-1]["position"]})
    assert caught_up.status_code == 200, caught_up.text
    changed = employment_changed(mover["id_number"], employer)
    await produce(stack.bootstrap, topic_prefix + "union.regional.employment.v1", [changed])

    async def transfer_opened() -> bool:
        r = await t.get(f"/members/{mover['member_id']}/transfers")
        return r.status_code == 200 and len(r.json()["items"]) == 1

    await wait_until(transfer_opened)
    await m.post(f"/members/{leaver['member_id']}/terminate", {"reason": "withdrew"})
    erased = await m.http.delete(f"/members/{leaver['member_id']}/personal-data")
    assert erased.status_code == 200, erased.text

    blind = {p["member_id"]: m.service.vault.blind_index(p["id_number"]) for p in people}
    restricted = await asyncio.to_thread(read_with_librdkafka, stack.bootstrap, [topic_prefix + RESTRICTED_TOPIC])
    public = await asyncio.to_thread(read_with_librdkafka, stack.bootstrap, [topic_prefix + t for t in PUBLIC_TOPICS])
    types = [ce(message, "type") for message in public]
    assert types.count("union.membership.MemberJoined.v1") == len(people)  # we read the right things
    assert "union.transfer.TransferRequested.v1" in types
    assert "union.membership.PersonalDataErased.v1" in types
    for message in public:
        text = text_of(message)
        assert "id_blind_index" not in text, (message.topic(), ce(message, "type"))
        for index in blind.values():
            assert index not in text, (message.topic(), ce(message, "type"))
    # the restricted topic has them, keyed by member; the erasure follows the index on the same partition
    indexed = {ce(r, "subject"): r for r in restricted if ce(r, "type") == "union.membership.MemberIdentityIndexed.v1"}
    for person in people:
        [message] = [r for r in indexed.values() if (r.key() or b"").decode() == person["member_id"]]
        assert blind[person["member_id"]] in text_of(message)
    [erasure] = [r for r in restricted if ce(r, "type") == "union.membership.MemberIdentityIndexErased.v1"]
    assert erasure.key().decode() == leaver["member_id"]
    [index_of_leaver] = [r for r in indexed.values() if r.key().decode() == leaver["member_id"]]
    assert erasure.partition() == index_of_leaver.partition()  # so compaction replaces the index with the erasure
    assert erasure.offset() > index_of_leaver.offset()
    assert blind[leaver["member_id"]] not in text_of(erasure)
