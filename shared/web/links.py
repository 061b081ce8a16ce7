"""OpenAPI links: which operation's answer gives the id that other operations take, so a generated client (and
the fuzzer's stateful phase) can follow a creation to what uses the thing created.

Each api module declares its links once, beside its router; the app factory writes them into the document:

    links.declare(router, Link("POST /organizations", "org_id", "GET /organizations/{org_id}", "POST /applications"))

A target takes the id as its path parameter, query parameter or body property of that name (`param` when the
name differs); a link naming an operation, or a parameter, that the document does not have fails when the
document is made, not silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

_declared: dict[int, list[Link]] = {}  # by id(router): routers compare by their routes, so are not hashable


class Link:
    """`source`'s 2xx answer carries `field` (at `pointer`, by default `/<field>`); each of `targets` takes it as
    `param` (by default the same name)."""

    def __init__(
        self, source: str, field: str, *targets: str, param: str | None = None, pointer: str | None = None
    ) -> None:
        self.source = source
        self.targets = targets
        self.param = param or field
        self.expression = f"$response.body#{pointer or '/' + field}"


def declare(router: APIRouter, *links: Link) -> None:
    """The links of this router's operations (their targets may be on another router of the same app)."""
    _declared.setdefault(id(router), []).extend(links)


def declared(routers: Sequence[APIRouter]) -> list[Link]:
    return [link for router in routers for link in _declared.get(id(router), [])]


def _operation(document: Mapping[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        raise ValueError(f"OpenAPI link: no operation {label}")
    assert isinstance(operation, dict)
    return operation


def _body_properties(document: Mapping[str, Any], operation: Mapping[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    names: set[str] = set()
    for media in content.values():
        schema = media.get("schema", {})
        ref = schema.get("$ref")
        if ref is not None:
            schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        names |= set(schema.get("properties", {}))
    return names


def _success_status(operation: Mapping[str, Any], label: str) -> str:
    for status in operation.get("responses", {}):
        if re.fullmatch(r"2\d\d", status):
            return str(status)
    raise ValueError(f"OpenAPI link: {label} declares no 2xx answer")


def _link_object(document: Mapping[str, Any], link: Link, target: str) -> dict[str, Any]:
    operation = _operation(document, target)
    name, expression = link.param, link.expression
    for parameter in operation.get("parameters", []):
        if parameter["name"] == name and parameter["in"] in {"path", "query"}:
            return {"operationId": operation["operationId"], "parameters": {f"{parameter['in']}.{name}": expression}}
    if name in _body_properties(document, operation):
        return {"operationId": operation["operationId"], "requestBody": {name: expression}}
    raise ValueError(f"OpenAPI link: {target} takes no {name}")


def _link_name(target: str, name: str) -> str:
    method, path = target.split(" ", 1)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    return f"{method.title()}{''.join(w.title() for w in words)}By{name.title().replace('_', '')}"


def add_links(document: dict[str, Any], links: Sequence[Link]) -> dict[str, Any]:
    """`links` written into the document, under each source's 2xx answer (idempotent: the document is cached)."""
    for link in links:
        source = _operation(document, link.source)
        answer = source["responses"][_success_status(source, link.source)]
        objects = answer.setdefault("links", {})
        for target in link.targets:
            objects[_link_name(target, link.param)] = _link_object(document, link, target)
    return document


def document_links(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The app's OpenAPI document carries the links its routers declared."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return add_links(generate(), declared(routers))

    app.openapi = openapi  # type: ignore[method-assign]
