"""Position tokens, 'consumed through' over partitions, channels, the envelope's position and the causation helper."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.causation import caused_by
from shared.consistency import through
from shared.envelope import Envelope, MalformedMessageError
from shared.errors import InvalidInputError
from shared.events import RESTRICTED, DomainEvent, channel_topic, topic_owner
from shared.positions import Token, Written, parse_tokens
from shared.store import Recorded, consumed_entry

P0, P1, P2 = ("t.union.membership.v1", 0), ("t.union.membership.v1", 1), ("t.union.membership.v1", 2)
R0 = ("t.union.membership.restricted.v1", 0)


def test_consumed_through_is_the_lowest_partition_unless_it_is_drained() -> None:
    partitions = [P0, P1, P2]
    assert through(partitions, {P0: 10, P1: 12, P2: 11}, caught_up=()) == 10
    assert through(partitions, {P0: 10, P1: 12, P2: 11}, caught_up={P0, P2}) == 12  # drained: through all seen
    assert through(partitions, {P0: 10, P1: 12}, caught_up={P0}) == 0  # P2 never consumed and not drained
    assert through(partitions, {P0: 10, P1: 12}, caught_up={P0, P2}) == 12
    assert through(partitions, {}, caught_up={P0, P1, P2}) == 0  # nothing seen: nothing to vouch for
    assert through([], {P0: 10}, caught_up=()) == 0  # partitions unknown: nothing to vouch for
    # a source's topics count together: its restricted topic's partition holds back its public ones
    assert through([P0, R0], {P0: 20, R0: 15}, caught_up={P0}) == 15
    assert through([P0, R0], {P0: 20, R0: 15}, caught_up={R0}) == 20


@given(
    st.dictionaries(st.integers(0, 5), st.integers(1, 1000), min_size=1),
    st.sets(st.integers(0, 5)),
)
def test_consumed_through_never_passes_an_undrained_partition(consumed: dict[int, int], drained: set[int]) -> None:
    partitions = [("t", p) for p in range(6)]
    at = {("t", p): c for p, c in consumed.items()}
    result = through(partitions, at, {("t", p) for p in drained})
    for p in partitions:
        if p[1] not in drained:
            assert result <= at.get(p, 0)
    assert result <= max(consumed.values())


def test_tokens_parse_from_a_list_and_keep_the_highest_per_service() -> None:
    assert parse_tokens(None, "query.after") == []
    assert parse_tokens(" ", "query.after") == []
    assert parse_tokens("membership:12, transfer:40,membership:7", "query.after") == [
        Token("membership", 12),
        Token("transfer", 40),
    ]
    assert str(Token("membership", 12)) == "membership:12"
    for bad in ["membership", "membership:", ":12", "membership:x", "Membership:1", "a:1;b:2", "m:1234567890123456789"]:
        with pytest.raises(InvalidInputError) as refused:
            parse_tokens(bad, "query.after")
        assert refused.value.field == "query.after"
    with pytest.raises(InvalidInputError):
        parse_tokens(",".join(f"s{i}:1" for i in range(17)), "query.after")


class Public(DomainEvent):
    n: int = 0


class Inside(DomainEvent):
    published: ClassVar[bool] = False


class Restricted(DomainEvent):
    channel: ClassVar[str] = RESTRICTED


def recorded(position: int, event: DomainEvent) -> Recorded:
    return Recorded(
        position, "s", 1, uuid.uuid4(), type(event).__name__, 1, {}, {}, datetime.now(UTC), "/x", b"", event
    )


def test_a_command_names_its_highest_public_position_else_what_it_published_else_what_it_wrote() -> None:
    written = Written()
    assert written.token() is None
    written.note("membership", [recorded(4, Public()), recorded(5, Public()), recorded(6, Restricted())])
    assert written.token() == Token("membership", 5)  # the public topic is the one every service reads
    only_restricted = Written()
    only_restricted.note("membership", [recorded(7, Restricted()), recorded(8, Inside())])
    assert only_restricted.token() == Token("membership", 7)
    unpublished = Written()
    unpublished.note("transfer", [recorded(9, Inside())])
    assert unpublished.token() == Token("transfer", 9)


def test_a_channel_names_its_topic_and_the_topic_its_owner() -> None:
    assert channel_topic("p.union.membership.v1", "public") == "p.union.membership.v1"
    assert channel_topic("p.union.membership.v1", RESTRICTED) == "p.union.membership.restricted.v1"
    with pytest.raises(ValueError, match="unknown channel"):
        channel_topic("union.membership.v1", "secret")
    assert topic_owner("p.union.membership.restricted.v1") == "membership"
    assert topic_owner("union.transfer.v1") == "transfer"
    assert topic_owner("union.regional.employment.v1") is None  # not a platform service's
    assert topic_owner("union.transfer.v1.dlq") is None


def envelope(source: str, **headers: str) -> Envelope:
    base = Envelope(id=uuid.uuid4(), source=source, type="union.membership.MemberJoined.v1", time=datetime.now(UTC))
    _, kafka_headers, value = base.to_kafka()
    return Envelope.from_kafka([*kafka_headers, *((f"ce_{k}", v.encode()) for k, v in headers.items())], value)


def test_the_envelope_carries_a_platform_services_position() -> None:
    assert envelope("/union/membership", position="1234").position == "1234"
    assert envelope("/union/membership", position="1234").attributes()["position"] == "1234"
    with pytest.raises(MalformedMessageError):
        envelope("/union/membership", position="12a")
    with pytest.raises(MalformedMessageError):
        envelope("/union/membership", position="1" * 19)  # past PostgreSQL's bigint
    assert envelope("/regional/gd-hrss", position="whatever").position is None  # only ours mean anything


def test_what_a_consumed_event_causes_carries_its_chain_on() -> None:
    cause = Envelope(
        id=uuid.uuid4(),
        source="/union/transfer",
        type="union.transfer.TransferCompleted.v1",
        time=datetime.now(UTC),
        correlationid="request-1",
        causationid="request-2",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    entry = consumed_entry(7, cause.model_dump(mode="json"))
    assert (entry.metadata["correlation_id"], entry.metadata["causation_id"]) == ("request-1", "request-2")
    meta = caused_by(entry, "service:/union/transfer")
    assert (meta.correlation_id, meta.causation_id) == ("request-1", str(cause.id))
    assert meta.traceparent == cause.traceparent
    assert meta.actor == "service:/union/transfer"
    # an event that began no chain of its own (sent by a system that knows none) begins one
    lone = consumed_entry(8, cause.model_copy(update={"correlationid": None}).model_dump(mode="json"))
    assert caused_by(lone, "x").correlation_id == str(cause.id)
