"""Malformed messages on every topic a service consumes go to `<topic>.dlq` with the reason in `dlq_error`,
and the consumer carries on: the good message produced after them, on the same partition, has its effect.

One table lists each (service, consumed topic) with a good message, how to see its effect, and the broken
variants of the events that consumer reads. The hostile messages every topic gets are listed once.
At the end, the same hostility over HTTP: bodies and names that must get a 413 or 422, never a 500.
"""

from __future__ import annotations

import csv
import importlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.consumer import dead_letter_reason
from shared.envelope import Envelope
from shared.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH
from shared.validators import validate_person_name
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, secret, serve_in_process
from tests.integration.test_membership import make_org
from tests.support import data
from tests.support.kafka import produce, read_topic
from tests.support.waiting import eventually

Message = tuple[bytes | None, list[tuple[str, bytes]], bytes]
KEY = b"hostile"  # one key: one partition, so the good message is read after every bad one
CASE = "x-test-case"  # kept on the dead letter with the other headers: which case it was

MEMBERSHIP, RESTRICTED, TRANSFER, SERVICECARD, REGIONAL = (
    "union.membership.v1",
    "union.membership.restricted.v1",
    "union.transfer.v1",
    "union.servicecard.v1",
    "union.regional.employment.v1",
)
SOURCES = {
    MEMBERSHIP: "/union/membership",
    RESTRICTED: "/union/membership",
    TRANSFER: "/union/transfer",
    SERVICECARD: "/union/servicecard",
}


def event(topic: str, name: str, payload: dict[str, Any], *, partitionkey: str | None = None) -> Envelope:
    wire = "union.regional.EmploymentChanged.v1" if topic == REGIONAL else f"union.{topic.split('.')[1]}.{name}.v1"
    return Envelope(
        id=uuid.uuid4(),
        source=SOURCES.get(topic, "/regional/sh-hrss"),
        type=wire,
        subject=f"test-{uuid.uuid4()}",
        time=datetime.now(UTC),
        partitionkey=partitionkey,
        data=payload,
    )


def on_the_wire(case: str, envelope: Envelope) -> Message:
    _, headers, value = envelope.to_kafka()
    return KEY, [*headers, (CASE, case.encode())], value


def ce_headers_from(case: str, source: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", source.encode()),
        ("ce_type", b"union.somewhere.SomethingHappened.v1"),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
        (CASE, case.encode()),
    ]


def nested(depth: int) -> bytes:
    return b'{"member_id": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# (case, message, what the dlq_error header says): what every consumed topic gets, whatever it carries
def hostile_to_every_topic(source: str) -> list[tuple[str, Message, str]]:
    """What every consumed topic gets; `source` is the topic's rightful one, so each case fails for its own
    reason (a wrong source is a case of its own)."""

    def ce_headers(case: str) -> list[tuple[str, bytes]]:
        return ce_headers_from(case, source)

    return [
        (
            "someone else's topic",
            (KEY, ce_headers_from("someone else's topic", "/union/impostor"), b'{"member_id": "x"}'),
            "does not publish on",
        ),
        ("not json", (KEY, ce_headers("not json"), b"\xff\xfe{not json"), "MalformedMessageError: value is not JSON"),
        ("not an object", (KEY, ce_headers("not an object"), b"[1, 2]"), "value is not a JSON object"),
        (
            "no ce_ headers",
            (KEY, [("content-type", b"application/json"), (CASE, b"no ce_ headers")], b'{"member_id": "x"}'),
            "MalformedMessageError: missing CloudEvents headers: ce_id, ce_source, ce_type, ce_specversion",
        ),
        (
            "ce_id not a uuid",
            (KEY, [(k, b"42" if k == "ce_id" else v) for k, v in ce_headers("ce_id not a uuid")], b"{}"),
            "MalformedMessageError: invalid CloudEvents attributes",
        ),
        (
            "header not utf-8",
            (KEY, [(k, b"\xff" if k == "ce_source" else v) for k, v in ce_headers("header not utf-8")], b"{}"),
            "MalformedMessageError: header is not UTF-8",
        ),
        (
            "one level too deep",
            (KEY, ce_headers("one level too deep"), nested(MAX_JSON_DEPTH + 1)),
            f"MalformedMessageError: value is JSON nested deeper than {MAX_JSON_DEPTH} levels",
        ),
        (
            # far past the interpreter's recursion limit: json.loads would raise RecursionError
            "100,000 levels deep",
            (KEY, ce_headers("100,000 levels deep"), nested(100_000)),
            f"MalformedMessageError: value is JSON nested deeper than {MAX_JSON_DEPTH} levels",
        ),
        (
            "lone surrogate",
            (KEY, ce_headers("lone surrogate"), b'{"member_id": "\\ud800"}'),
            "MalformedMessageError: value is not JSON",  # no text holds half a character: refused on reading
        ),
        (
            "NUL character",
            (KEY, ce_headers("NUL character"), b'{"member_id": "a\\u0000b"}'),
            "holds the character U+0000",  # refused on reading: PostgreSQL stores it in no text and no jsonb
        ),
    ]


@dataclass(frozen=True)
class Broken:
    """An event the consumer reads, with one field missing or of the wrong type."""

    case: str
    name: str
    payload: dict[str, Any]
    reason: str


@dataclass
class World:
    """Ids shared by one test's messages, and the running service."""

    running: ServiceUnderTest
    member_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    org_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    id_number: str = field(default_factory=data.identity_number)
    employer: str = field(default_factory=data.credit_code)
    enterprise: str = field(default_factory=lambda: str(uuid.uuid4()))

    async def fetchval(self, sql: str, *args: object) -> Any:
        async with self.running.service.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def consumed(self, envelope: Envelope) -> bool:
        return bool(await self.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", envelope.id))


Setup = Callable[[World], Awaitable[list[tuple[str, Envelope]]]]  # messages (topic, event) the good one needs first
Good = Callable[[World], Envelope]
Effect = Callable[[World, Envelope], Awaitable[bool]]


@dataclass(frozen=True)
class Consumed:
    service: str
    topic: str
    good: Good
    effect: Effect
    broken: Callable[[World], list[Broken]]
    setup: Setup | None = None

    @property
    def id(self) -> str:
        return f"{self.service}<-{self.topic}"


def member_joined(w: World, **overrides: Any) -> dict[str, Any]:
    payload = {
        "member_id": w.member_id,
        "member_no": f"M{uuid.uuid4().hex[:10]}",
        "org_id": w.org_id,
        "joined_at": date.today().isoformat(),  # noqa: DTZ011
        "employment_type": "regular",
        "household_type": "urban",
    }
    return {k: v for k, v in {**payload, **overrides}.items() if v is not ...}


def identity_indexed(w: World, **overrides: Any) -> dict[str, Any]:
    payload = {"member_id": w.member_id, "id_blind_index": "b" * 64}
    return {k: v for k, v in {**payload, **overrides}.items() if v is not ...}


def benefit_redeemed(w: World, **overrides: Any) -> dict[str, Any]:
    payload = {
        "redemption_id": str(uuid.uuid4()),
        "member_id": w.member_id,
        "card_no_masked": "6200********1234",
        "item_id": str(uuid.uuid4()),
        "category": "legal_aid",
        "org_id": w.org_id,
        "units": 1,
        "year": 2025,
        "redeemed_at": datetime.now(UTC).isoformat(),
    }
    return {k: v for k, v in {**payload, **overrides}.items() if v is not ...}


def transfer_completed(w: World, **overrides: Any) -> dict[str, Any]:
    payload = {
        "transfer_id": str(uuid.uuid4()),
        "member_id": w.member_id,
        "from_org_id": w.org_id,
        "to_org_id": str(uuid.uuid4()),
    }
    return {k: v for k, v in {**payload, **overrides}.items() if v is not ...}


def employment_changed(w: World, **overrides: Any) -> dict[str, Any]:
    payload = {
        "id_number": w.id_number,
        "employer_credit_code": w.employer,
        "employer_name": "顺丰速运",
        "region_code": "310115",
        "effective_date": "2025-04-01",
    }
    return {k: v for k, v in {**payload, **overrides}.items() if v is not ...}


HUGE = "9" * 500_000  # a field of half a megabyte, where the consumer expects a uuid


def invalid(event: str, field: str) -> str:
    """The reason a message that breaks its producer's published language gets: the event and the field named."""
    return f"ValidationError: 1 validation error for {event}\n{field}\n"


def transfer_requested_event(w: World) -> dict[str, Any]:
    now = datetime.now(UTC)
    return transfer_completed(
        w,
        reason="changed jobs",
        requested_by="member",
        requested_at=now.isoformat(),
        expires_at=(now + timedelta(days=30)).isoformat(),
    )


WRONG_UUID = "ValueError: badly formed hexadecimal UUID string"


async def regional_directory(w: World) -> list[tuple[str, Envelope]]:
    """Transfer learns of the member, their township and the new employer's union from membership's topic."""
    organisations = [
        {"org_id": w.org_id, "type": "township", "accepts_members": True},
        {"org_id": w.enterprise, "type": "enterprise", "accepts_members": True, "credit_code": w.employer},
    ]
    blind_index = w.running.service.vault.blind_index(w.id_number)
    return [
        *(
            (MEMBERSHIP, event(MEMBERSHIP, "OrganizationRegistered", {"name": "工会", "region_code": "310115", **o}))
            for o in organisations
        ),
        (MEMBERSHIP, event(MEMBERSHIP, "MemberJoined", member_joined(w), partitionkey=w.member_id)),
        (RESTRICTED, event(RESTRICTED, "MemberIdentityIndexed", identity_indexed(w, id_blind_index=blind_index))),
    ]


async def transfer_requested(w: World, _: Envelope) -> bool:
    return bool(await w.fetchval("SELECT 1 FROM transfers WHERE member_id = $1::uuid", w.member_id))


async def kept_in_the_inbox(w: World, good: Envelope) -> bool:
    return await w.consumed(good)


CONSUMED = [
    Consumed(
        "membership",
        TRANSFER,
        good=lambda w: event(TRANSFER, "TransferRequested", transfer_requested_event(w), partitionkey=w.member_id),
        effect=kept_in_the_inbox,  # the member's dossier
        broken=lambda w: [
            Broken(
                "no member_id",
                "TransferCompleted",
                transfer_completed(w, member_id=...),
                invalid("TransferEvent", "member_id"),
            ),
            Broken(
                "member_id a number",
                "TransferCompleted",
                transfer_completed(w, member_id=42),
                "member_id 42 is not a member id",
            ),
            Broken(
                "to_org_id huge",
                "TransferCompleted",
                transfer_completed(w, to_org_id=HUGE),
                invalid("TransferEvent", "to_org_id"),
            ),
        ],
    ),
    Consumed(
        "membership",
        SERVICECARD,
        good=lambda w: event(SERVICECARD, "BenefitRedeemed", benefit_redeemed(w), partitionkey=w.member_id),
        effect=kept_in_the_inbox,
        broken=lambda _: [],  # membership reads only member_id of these: see the dossier test below
    ),
    Consumed(
        "transfer",
        MEMBERSHIP,
        good=lambda w: event(MEMBERSHIP, "MemberJoined", member_joined(w), partitionkey=w.member_id),
        effect=lambda w, _: w.fetchval("SELECT 1 FROM directory_members WHERE member_id = $1::uuid", w.member_id),
        broken=lambda w: [
            Broken(
                "no member_id", "MemberJoined", member_joined(w, member_id=...), invalid("MemberJoined", "member_id")
            ),
            Broken(
                "no member_no", "MemberJoined", member_joined(w, member_no=...), invalid("MemberJoined", "member_no")
            ),
            Broken(
                "member_id a number",
                "MemberJoined",
                member_joined(w, member_id=42),
                invalid("MemberJoined", "member_id"),
            ),
            Broken("org_id huge", "MemberJoined", member_joined(w, org_id=HUGE), invalid("MemberJoined", "org_id")),
            Broken(
                "terminated, member_id null",
                "MemberTerminated",
                {"member_id": None, "reason": "x"},
                invalid("MemberTerminated", "member_id"),
            ),
        ],
    ),
    Consumed(
        "transfer",
        RESTRICTED,
        good=lambda w: event(RESTRICTED, "MemberIdentityIndexed", identity_indexed(w), partitionkey=w.member_id),
        effect=lambda w, _: w.fetchval("SELECT 1 FROM person_index WHERE member_id = $1::uuid", w.member_id),
        broken=lambda w: [
            Broken(
                "no id_blind_index",
                "MemberIdentityIndexed",
                identity_indexed(w, id_blind_index=...),
                invalid("MemberIdentityIndexed", "id_blind_index"),
            ),
            Broken(
                "member_id a number",
                "MemberIdentityIndexed",
                identity_indexed(w, member_id=42),
                invalid("MemberIdentityIndexed", "member_id"),
            ),
            Broken(
                "erased, member_id huge",
                "MemberIdentityIndexErased",
                {"member_id": HUGE},
                invalid("MemberIdentityIndexErased", "member_id"),
            ),
        ],
    ),
    Consumed(
        "transfer",
        REGIONAL,
        setup=regional_directory,
        good=lambda w: event(REGIONAL, "EmploymentChanged", employment_changed(w)),
        effect=transfer_requested,
        broken=lambda w: [
            Broken("no id_number", "", employment_changed(w, id_number=...), "id_number: Field required"),
            Broken("date a number", "", employment_changed(w, effective_date=[2025]), "effective_date: Input should"),
            Broken("name huge", "", employment_changed(w, employer_name=HUGE), "employer_name: String should have at"),
        ],
    ),
    Consumed(
        "servicecard",
        MEMBERSHIP,
        good=lambda w: event(MEMBERSHIP, "MemberJoined", member_joined(w), partitionkey=w.member_id),
        effect=lambda w, _: w.fetchval("SELECT 1 FROM cards WHERE member_id = $1::uuid", w.member_id),
        broken=lambda w: [
            Broken("no member_id", "MemberJoined", member_joined(w, member_id=...), "KeyError: 'member_id'"),
            Broken("member_id a number", "MemberJoined", member_joined(w, member_id=42), WRONG_UUID),
        ],
    ),
    Consumed(
        "feedback",
        MEMBERSHIP,
        good=lambda w: event(MEMBERSHIP, "MemberJoined", member_joined(w), partitionkey=w.member_id),
        effect=lambda w, _: w.fetchval("SELECT 1 FROM directory_members WHERE member_id = $1::uuid", w.member_id),
        broken=lambda w: [
            Broken(
                "no member_no", "MemberJoined", member_joined(w, member_no=...), invalid("MemberJoined", "member_no")
            ),
            Broken(
                "member_id a number",
                "MemberJoined",
                member_joined(w, member_id=42),
                invalid("MemberJoined", "member_id"),
            ),
            Broken("org_id huge", "MemberJoined", member_joined(w, org_id=HUGE), invalid("MemberJoined", "org_id")),
        ],
    ),
    Consumed(
        "feedback",
        SERVICECARD,
        good=lambda w: event(SERVICECARD, "BenefitRedeemed", benefit_redeemed(w), partitionkey=w.member_id),
        effect=lambda w, _: w.fetchval("SELECT 1 FROM redemptions WHERE member_id = $1::uuid", w.member_id),
        broken=lambda w: [
            Broken(
                "no item_id", "BenefitRedeemed", benefit_redeemed(w, item_id=...), invalid("BenefitRedeemed", "item_id")
            ),
            Broken(
                "redemption_id a number",
                "BenefitRedeemed",
                benefit_redeemed(w, redemption_id=7),
                invalid("BenefitRedeemed", "redemption_id"),
            ),
            Broken(
                "redeemed_at not a time",
                "BenefitRedeemed",
                benefit_redeemed(w, redeemed_at="soon"),
                invalid("BenefitRedeemed", "redeemed_at"),
            ),
        ],
    ),
]


# --- the services, each with its consumer ------------------------------------------------------------------


def settings_for(service: str, stack: Stack, unique: str, topic_prefix: str, pii_keys: dict[str, str]) -> Any:
    common = {
        "database_url": stack.dsn,
        "db_schema": f"h{service[0]}_{unique}",
        **stack.settings(),
        "topic_prefix": topic_prefix,
        "relay_poll_interval": 0.05,
        "run_consumers": True,
        "consumer_max_retries": 1,
    }
    if service == "membership":
        from services.membership.service import MembershipSettings  # noqa: PLC0415

        return MembershipSettings(**common, **pii_keys)
    if service == "transfer":
        from services.transfer.service import TransferSettings  # noqa: PLC0415

        return TransferSettings(**common, blind_index_key=pii_keys["blind_index_key"])
    if service == "servicecard":
        from services.servicecard.service import ServicecardSettings  # noqa: PLC0415

        return ServicecardSettings(**common)
    from services.feedback.service import FeedbackSettings  # noqa: PLC0415

    return FeedbackSettings(**common, ballot_master_key=secret(32))


@asynccontextmanager
async def consuming(service: str, settings: Any) -> AsyncIterator[ServiceUnderTest]:
    main = importlib.import_module(f"services.{service}.main")
    async with serve_in_process(main.build_app(settings)) as running:
        yield running


# --- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("consumed", CONSUMED, ids=lambda c: c.id)
async def test_malformed_messages_are_dead_lettered_and_the_consumer_carries_on(
    consumed: Consumed,
    stack: Stack,
    unique: str,
    topic_prefix: str,
    pii_keys: dict[str, str],
    all_topics: list[str],
) -> None:
    settings = settings_for(consumed.service, stack, unique, topic_prefix, pii_keys)
    async with consuming(consumed.service, settings) as running:
        w = World(running)
        if consumed.setup is not None:
            first = await consumed.setup(w)
            for topic, envelope in first:
                await produce(stack.bootstrap, topic_prefix + topic, [on_the_wire("setup", envelope)])
            for _, envelope in first:
                await eventually(lambda e=envelope: w.consumed(e), "the setup messages to be consumed")
        hostile = hostile_to_every_topic(SOURCES.get(consumed.topic, "/regional/sh-hrss"))
        expected = {case: reason for case, _, reason in hostile}
        messages = [message for _, message, _ in hostile]
        for broken in consumed.broken(w):
            expected[broken.case] = broken.reason
            messages.append(on_the_wire(broken.case, event(consumed.topic, broken.name, broken.payload)))
        good = consumed.good(w)
        await produce(stack.bootstrap, topic_prefix + consumed.topic, [*messages, on_the_wire("good", good)])

        await eventually(lambda: consumed.effect(w, good), f"the good message on {consumed.topic} to take effect")
        dead = await read_topic(stack.bootstrap, f"{topic_prefix}{consumed.topic}.dlq", expect=len(expected))
        reasons = {dict(d.headers)[CASE].decode(): dead_letter_reason(d.headers) or "" for d in dead}
        assert sorted(reasons) == sorted(expected), f"dead-lettered {sorted(reasons)}, expected {sorted(expected)}"
        for case, reason in expected.items():
            assert reason in reasons[case], (case, reasons[case])
        assert len(dead) == len(expected)  # each once
        for d in dead:
            headers = dict(d.headers)
            assert headers["dlq_topic"].decode() == topic_prefix + consumed.topic
            assert headers["dlq_consumer_group"].decode() == f"{topic_prefix}{consumed.service}"
            assert int(headers["dlq_attempts"]) == 1  # none of these is retried: retrying cannot mend them
        consumer = running.service.runtime.consumer
        assert consumer.dead_lettered == len(expected)


async def test_a_dossier_event_with_broken_data_is_dead_lettered(
    stack: Stack, unique: str, topic_prefix: str, pii_keys: dict[str, str], all_topics: list[str]
) -> None:
    settings = settings_for("membership", stack, unique, topic_prefix, pii_keys)
    async with consuming("membership", settings) as running:
        w = World(running)
        broken = event(SERVICECARD, "BenefitRedeemed", benefit_redeemed(w, member_id=42), partitionkey=w.member_id)
        good = event(SERVICECARD, "BenefitRedeemed", benefit_redeemed(w), partitionkey=w.member_id)
        await produce(
            stack.bootstrap, topic_prefix + SERVICECARD, [on_the_wire("broken", broken), on_the_wire("good", good)]
        )
        await eventually(lambda: w.consumed(good), "the good message to be consumed")
        assert not await w.consumed(broken)
        [dead] = await read_topic(stack.bootstrap, f"{topic_prefix}{SERVICECARD}.dlq", expect=1)
        assert "member_id 42 is not a member id" in dict(dead.headers)["dlq_error"].decode()


# --- the same hostility over HTTP: the services' own apps (shared.web.app wires the guard) ---------------------


def problem(r: Any) -> tuple[str, str]:
    body = r.json()
    [error] = body["errors"]
    return error["field"], error["reason"]


async def test_bodies_too_large_or_too_deep_or_not_utf8_never_reach_a_route(membership: ServiceUnderTest) -> None:
    json_type = {"content-type": "application/json"}
    r = await membership.http.post("/applications", content=b" " * (MAX_BODY_BYTES + 1), headers=json_type)
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")

    r = await membership.http.post("/applications", content=b"[" * 100_000 + b"]" * 100_000, headers=json_type)
    assert r.status_code == 422
    assert problem(r) == ("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")

    r = await membership.http.post("/applications", content='{"name": "张伟"}'.encode("gb18030"), headers=json_type)
    assert r.status_code == 422
    assert problem(r)[1].startswith("body is not valid UTF-8")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("张\u200b伟", "name contains an invisible character U+200B ZERO WIDTH SPACE"),
        ("张伟\u202e", "name contains a bidirectional control character U+202E"),
        ("Pаvel Petrov", "name mixes Latin and Cyrillic letters"),
        ("张伟😀", "name contains a symbol or emoji"),
        ("张\ue000", "name contains a private-use character U+E000"),
        ("\ud800", "unable to parse raw data as a unicode string"),  # a lone surrogate escape: pydantic's reason
    ],
)
async def test_hostile_names_get_a_422_naming_what_is_wrong(
    membership: ServiceUnderTest, name: str, reason: str
) -> None:
    org = await make_org(membership)
    body = json.dumps(data.application(org, name=name)).encode()  # ascii escapes: a lone surrogate travels too
    r = await membership.http.post("/applications", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    field, said = problem(r)
    assert field == "name"
    assert reason in said


async def test_names_written_in_the_ways_people_write_them_are_accepted(membership: ServiceUnderTest) -> None:
    org = await make_org(membership)
    for name in ("刘䶮", "阿沛 ・ 阿旺晋美", "བཀྲ་ཤིས་", "ئابدۇرېھىم", "ᠴᠢᠩᠭᠢᠰ", "ＪＯＨＮ O\u2019Brien"):
        r = await membership.post("/applications", data.application(org, name=name))
        assert r.status_code == 201, (name, r.text)


def test_the_importer_refuses_the_same_names_with_the_same_reasons(tmp_path: Path) -> None:
    from services.membership.importer import COLUMNS, read_roster  # noqa: PLC0415

    names = ["刘䶮", "张\u200b伟", "Pаvel Petrov", "工人1", "阿沛 ・ 阿旺晋美", "张伟\u202e"]
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for name in names:
            writer.writerow(
                {
                    **dict.fromkeys(COLUMNS, ""),
                    "org_id": str(uuid.uuid4()),
                    "name": name,
                    "id_number": data.identity_number(),
                    "phone": data.phone(),
                    "employment_type": "regular",
                    "household_type": "rural",
                    "joined_at": "2019-05-01",
                }
            )
    members, errors = read_roster(roster)
    reasons: dict[str, str] = {}
    for name in names:
        try:
            validate_person_name(name)
        except ValueError as exc:
            reasons[name] = str(exc)
    assert errors == [f"line {names.index(n) + 2}: name: {reason}" for n, reason in reasons.items()]
    assert [m.person.name for m in members] == ["刘䶮", "阿沛·阿旺晋美"]
