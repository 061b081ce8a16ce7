"""The request guard: oversized bodies get 413, JSON nested too deep or not UTF-8 gets 422, before the app parses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.envelope import Envelope, MalformedMessageError
from shared.limits import MAX_JSON_DEPTH, holds_nul, json_depth_exceeds
from shared.web.guards import RequestGuard

LIMIT = 1000
DEPTH = 32


class Anything(BaseModel):
    value: Any = None


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestGuard, max_body_bytes=LIMIT, max_json_depth=DEPTH)

    @app.post("/json")
    async def echo_json(body: Anything) -> dict[str, Any]:
        return {"value": body.value}

    @app.post("/raw")
    async def echo_raw(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def nested(depth: int) -> bytes:
    """`{"value": [[...]]}`: the object is one level, so `depth - 1` arrays inside it."""
    return b'{"value": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def reason(response: httpx.Response) -> str:
    body = response.json()
    assert body["code"] == "invalid_input"
    [error] = body["errors"]
    assert error["field"] == "body"
    assert body["detail"] == error["reason"]
    return str(error["reason"])


async def test_a_body_larger_than_the_limit_by_its_content_length_is_refused_unread(client: httpx.AsyncClient):
    r = await client.post("/raw", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
    assert r.json() == {"code": "payload_too_large", "detail": f"request body is larger than {LIMIT} bytes"}


async def test_a_body_of_exactly_the_limit_passes(client: httpx.AsyncClient):
    r = await client.post("/raw", content=b"x" * LIMIT, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert r.json() == {"received": LIMIT}


async def test_a_chunked_body_without_content_length_is_cut_off_while_streaming():
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"x" * 300

    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        r = await http.post("/raw", content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert pulled < 10  # refused as soon as the limit was passed, not after reading everything


async def test_a_chunked_body_under_the_limit_reaches_the_app():
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 300

    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        r = await http.post("/raw", content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert r.json() == {"received": 900}


async def test_json_nested_one_level_deeper_than_the_limit_is_refused(client: httpx.AsyncClient):
    r = await client.post("/json", content=nested(DEPTH + 1), headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert reason(r) == f"JSON nested deeper than {DEPTH} levels"


async def test_json_nested_exactly_to_the_limit_is_accepted(client: httpx.AsyncClient):
    r = await client.post("/json", content=nested(DEPTH), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content_type", [None, "application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON"]
)
async def test_every_content_type_parsed_as_json_is_checked(client: httpx.AsyncClient, content_type: str | None):
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/json", content=nested(DEPTH + 1), headers=headers)
    assert r.status_code == 422
    assert "nested deeper" in reason(r)


async def test_a_body_that_is_not_json_by_its_content_type_is_not_scanned(client: httpx.AsyncClient):
    r = await client.post("/raw", content=b"[" * 500, headers={"content-type": "text/plain"})
    assert r.status_code == 200


async def test_brackets_inside_strings_do_not_count(client: httpx.AsyncClient):
    body = b'{"value": ["[[[[{{{{' + b"[" * 200 + b'\\"\\\\", "]]]]}}}}"]}'
    r = await client.post("/json", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["value"][0].startswith("[[[[{{{{[[[[")


async def test_a_hostile_depth_far_beyond_the_recursion_limit_is_a_422_not_a_crash(client: httpx.AsyncClient):
    r = await client.post("/json", content=b"[" * 450 + b"]" * 450, headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/json", content=b'{"value":' + b"[" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413  # 100 kB is over this app's limit: the size is checked first


async def test_a_get_without_body_passes(client: httpx.AsyncClient):
    r = await client.get("/ping")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("body", "offset"),
    [(b'{"value": "\xff"}', 11), (b'{"value": "\xe4\xb8"}', 11), ('{"value": "a"}'.encode("utf-16"), 0)],
)
async def test_a_json_body_that_is_not_utf8_is_a_422(client: httpx.AsyncClient, body: bytes, offset: int):
    r = await client.post("/json", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert reason(r).startswith(f"body is not valid UTF-8 (byte 0x{body[offset]:02X} at offset {offset})")


async def test_utf8_json_with_chinese_and_rare_characters_passes(client: httpx.AsyncClient):
    r = await client.post("/json", json={"value": "吉𠮷 𪚥 䶮·阿沛"})
    assert r.status_code == 200
    assert r.json() == {"value": "吉𠮷 𪚥 䶮·阿沛"}


# --- the scan itself --------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9\U00020bb7'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a'), inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.integers(0, 8))
def test_the_scan_agrees_with_the_parsed_depth(value: Any, limit: int):
    body = json.dumps(value, ensure_ascii=False).encode()
    assert json_depth_exceeds(body, limit) == (depth(value) > limit)


def holds(value: Any) -> bool:
    if isinstance(value, list):
        return any(holds(v) for v in value)
    if isinstance(value, dict):
        return any(holds(k) or holds(v) for k, v in value.items())
    return isinstance(value, str) and "\x00" in value


nul_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='\\"u0\x00a'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="\\u0\x00"), inner, max_size=3),
    max_leaves=20,
)


@given(nul_values)
def test_the_nul_scan_agrees_with_the_parsed_text(value: Any):
    body = json.dumps(value).encode()  # U+0000 escaped as \u0000, a backslash as \\
    assert holds_nul(body) == holds(value)


@given(st.binary(max_size=200), st.integers(0, 5))
def test_the_scan_never_fails_on_arbitrary_bytes(body: bytes, limit: int):
    assert json_depth_exceeds(body, limit) in {True, False}


# --- the same limit on consumed messages ------------------------------------------------------------------------


def ce_headers() -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"6f1c1b0e-6a43-4a53-9d43-3f1f0a6c2b11"),
        ("ce_source", b"/union/membership"),
        ("ce_type", b"union.membership.MemberJoined.v1"),
        ("ce_time", b"2025-04-01T08:00:00+00:00"),
    ]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_a_consumed_value_nested_too_deep_is_malformed_not_a_recursion_error(depth: int):
    value = b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    with pytest.raises(MalformedMessageError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        Envelope.from_kafka(ce_headers(), value)


def test_a_consumed_value_nested_to_the_limit_is_read():
    value = b'{"a": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert "a" in Envelope.from_kafka(ce_headers(), value).data
