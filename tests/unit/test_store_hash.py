"""The hash chain's body is written out by hand on the append path: it must stay the canonical JSON it always was,
or every stored chain would stop verifying."""

from __future__ import annotations

import hashlib
import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.store import GENESIS, canonical_json, chain_hash

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
