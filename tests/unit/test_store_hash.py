"""The hash chain's body is written out by hand on the append path: it must stay the canonical JSON it always was,
or every stored chain would stop verifying."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.events import DomainEvent
from shared.store import GENESIS, _float_free, canonical_json, chain_hash, event_json

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(stream_id=text, name=text, version=st.integers(1, 10**9), schema_version=st.integers(1, 99), note=text)
def test_the_hash_is_over_the_canonical_json_of_the_event(
    stream_id: str, name: str, version: int, schema_version: int, note: str
) -> None:
    event_id = uuid.uuid4()
    data = {"note": note, "n": version, "nested": {"b": [1, 2.5, None, True], "a": name}}
    body = canonical_json([stream_id, version, str(event_id), name, schema_version, data])
    expected = hashlib.sha256(GENESIS + body.encode()).digest()
    assert chain_hash(GENESIS, stream_id, version, event_id, name, schema_version, data) == expected
    assert chain_hash(GENESIS, stream_id, version, event_id, name, schema_version, canonical_json(data)) == expected


# every JSON value a stored event may hold, lone surrogates and ints beyond 64 bits included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(value=json_values)
def test_canonical_json_is_what_the_json_module_writes(value: object) -> None:
    # the chains stored so far were hashed over json.dumps' text: the fast path must write the same bytes
    assert canonical_json(value) == json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_canonical_json_writes_small_exponents_as_json_does() -> None:
    assert canonical_json({"d": 1.5e-07, "e": 6.103515625e-05, "id": "1e-7"}) == (
        '{"d":1.5e-07,"e":6.103515625e-05,"id":"1e-7"}'
    )


class _Kind(StrEnum):
    A = "a"


class _Inner(BaseModel):
    at: datetime
    kinds: list[_Kind]


class _FloatFree(DomainEvent):
    member_id: uuid.UUID
    n: int | None = None
    on: date
    inner: _Inner
    tags: dict[str, str]


class _WithAmount(DomainEvent):
    amount: Decimal


class _WithAverage(DomainEvent):
    nested: dict[str, list[float]]


@given(n=st.integers(-(2**62), 2**62), tag=st.text(max_size=20), day=st.dates())
def test_an_event_whose_fields_hold_no_float_is_written_as_canonical_json(n: int, tag: str, day: date) -> None:
    event = _FloatFree(
        member_id=uuid.uuid4(), n=n, on=day, inner=_Inner(at=datetime.now(UTC), kinds=[_Kind.A]), tags={tag: tag}
    )
    data = event.model_dump(mode="json")
    assert event_json(event, data) == canonical_json(data)


def test_events_that_may_hold_a_float_take_the_reference_path() -> None:
    assert _float_free(_FloatFree)
    assert not _float_free(_WithAmount)  # a Decimal is a number in JSON mode's schema
    assert not _float_free(_WithAverage)
    data = {"nested": {"x": [6.103515625e-05]}}
    assert event_json(_WithAverage(nested={"x": [6.103515625e-05]}), data) == '{"nested":{"x":[6.103515625e-05]}}'
