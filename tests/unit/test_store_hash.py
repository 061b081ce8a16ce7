"""The hash chain's body is written out by hand on the append path: it must stay the canonical JSON it always was,
or every stored chain would stop verifying."""

from __future__ import annotations

import hashlib
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
