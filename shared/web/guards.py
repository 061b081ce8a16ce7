"""Hostile request bodies stop at the door: too large (413) or JSON nested too deep or not UTF-8 (422).

A pure ASGI middleware, so the body is counted as it streams and never parsed here: a linear scan over the
bytes finds the nesting depth, then the body is replayed to the app, which parses it once as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth_exceeds, utf8_problem


def _is_json(content_type: str | None) -> bool:
    # as FastAPI decides: no content type, application/json or application/<anything>+json is parsed as JSON
    if not content_type:
        return True
    maintype, _, subtype = content_type.split(";", 1)[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None  # counted while it streams instead
    return int(value)


class RequestGuard:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, max_json_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(headers.get("content-type")):
            problem = utf8_problem(body)
            if problem is None and json_depth_exceeds(body, self.max_json_depth):
                problem = f"JSON nested deeper than {self.max_json_depth} levels"
            if problem is not None:
                await _invalid_body(problem)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body is larger than {self.max_body_bytes} bytes"
        response = JSONResponse(status_code=413, content={"code": "payload_too_large", "detail": detail})
        await response(scope, receive, send)


def _invalid_body(reason: str) -> JSONResponse:
    content: dict[str, Any] = {
        "code": "invalid_input",
        "errors": [{"field": "body", "reason": reason}],
        "detail": reason,
    }
    return JSONResponse(status_code=422, content=content)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()  # after the body: the disconnect, when it comes
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# PostgreSQL text cannot hold U+0000: any input that carries one is refused here, naming the field
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # the JSON escape, not an escaped backslash before "u0000"
_NUL_REASON = "contains a NUL character (U+0000), which text cannot hold"


def _nul_at(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (*path, key)
        if (found := _nul_at(item, (*path, key))) is not None:
            return found
    return None


async def refuse_nul_characters(request: Request) -> None:
    """A dependency of every route: 422 for a NUL character in a path or query parameter or a JSON body."""
    for location, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            if "\x00" in f"{name}{value}":
                raise RequestValidationError([{"loc": (location, name), "msg": _NUL_REASON, "type": "string_nul"}])
    body = await request.body()  # FastAPI has read it already: this is the cached copy
    if _NUL_ESCAPE.search(body) is None:
        return
    try:
        found = _nul_at(json.loads(body))
    except ValueError:
        return  # not JSON: the route's own parsing refuses it
    if found is not None:
        raise RequestValidationError([{"loc": ("body", *found), "msg": _NUL_REASON, "type": "string_nul"}])
