"""The CloudEvents 1.0 envelope and its Kafka binding in binary mode (`ce_*` headers, JSON value)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.limits import MAX_JSON_DEPTH, holds_nul, json_depth_exceeds

SPEC_VERSION = "1.0"
_REQUIRED = ("id", "source", "type", "specversion")
_EXTENSIONS = (
    "subject",
    "time",
    "partitionkey",
    "sequence",
    "correlationid",
    "causationid",
    "traceparent",
    "position",
)
# the producing service's log position: at most 18 digits, so it always fits PostgreSQL's bigint
POSITION_PATTERN = r"^[0-9]{1,18}$"


class MalformedMessageError(ValueError):
    """A message that can never be handled: it goes straight to the dead-letter topic."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    partitionkey: str | None = None
    sequence: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    # the position of the event in its producer's log (the platform's services set it): consumers derive from it
    # how far they have read each source (shared/consistency.py)
    position: str | None = Field(None, pattern=POSITION_PATTERN)
    data: dict[str, Any] = Field(default_factory=dict)

    def attributes(self) -> dict[str, str]:
        attrs = {
            "specversion": SPEC_VERSION,
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
        }
        for name in ("subject", "partitionkey", "sequence", "correlationid", "causationid", "traceparent", "position"):
            value = getattr(self, name)
            if value is not None:
                attrs[name] = value
        return attrs

    def to_kafka(self) -> tuple[bytes | None, list[tuple[str, bytes]], bytes]:
        """(key, headers, value) per the CloudEvents Kafka protocol binding, binary content mode."""
        headers = kafka_headers(self.attributes(), self.datacontenttype)
        key = self.partitionkey.encode() if self.partitionkey else None
        value = orjson.dumps(self.data)
        return key, headers, value

    @classmethod
    def from_kafka(
        cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], value: bytes | None
    ) -> Envelope:
        attrs, content_type = _read_headers(headers)
        missing = [a for a in _REQUIRED if a not in attrs]
        if missing:
            raise MalformedMessageError(f"missing CloudEvents headers: {', '.join('ce_' + m for m in missing)}")
        if attrs.pop("specversion") != SPEC_VERSION:
            raise MalformedMessageError("unsupported CloudEvents specversion")
        if not content_type.startswith("application/json"):
            raise MalformedMessageError(f"unsupported content type {content_type!r}")
        raw = value or b"null"
        # checked before parsing: deep enough, a parser raises RecursionError, which no retry mends
        if json_depth_exceeds(raw, MAX_JSON_DEPTH):
            raise MalformedMessageError(f"value is JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if holds_nul(raw) or any("\x00" in str(v) for v in attrs.values()):
            raise MalformedMessageError("the message holds the character U+0000, which no text may hold here")
        try:
            data = orjson.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise MalformedMessageError(f"value is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedMessageError("value is not a JSON object")
        known = {k: attrs[k] for k in (*_REQUIRED[:3], *_EXTENSIONS) if k in attrs}
        if not str(known["source"]).startswith("/union/"):
            known.pop("position", None)  # a log position means something only from a platform service
        try:
            return cls(**known, datacontenttype=content_type, data=data)
        except ValidationError as exc:
            raise MalformedMessageError(f"invalid CloudEvents attributes: {exc.errors()[0]['msg']}") from None


def kafka_headers(attributes: dict[str, str], content_type: str = "application/json") -> list[tuple[str, bytes]]:
    """The binary-mode headers: one `ce_<attribute>` per CloudEvents attribute, and the content type."""
    headers = [(f"ce_{k}", v.encode()) for k, v in attributes.items()]
    headers.append(("content-type", content_type.encode()))
    return headers


def _read_headers(headers: Sequence[tuple[str, bytes]]) -> tuple[dict[str, Any], str]:
    attrs: dict[str, Any] = {}
    content_type = "application/json"
    try:
        for name, raw in headers:
            if name.startswith("ce_"):
                attrs[name[3:]] = raw.decode()
            elif name.lower() == "content-type":
                content_type = raw.decode()
    except UnicodeDecodeError as exc:
        raise MalformedMessageError(f"header is not UTF-8: {exc}") from None
    return attrs, content_type
