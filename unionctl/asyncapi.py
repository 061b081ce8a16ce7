"""The AsyncAPI 3.0.0 document of the platform's topics, generated from the event classes.

Each published event class is one message: its payload is the class's JSON Schema without the private
fields (they never leave the service), its headers are the CloudEvents Kafka binding's `ce_*` headers
(binary mode), its Kafka key is the partition key. Shared pydantic definitions go to
`components/schemas`. Every mapping is emitted with sorted keys, so the rendered text is stable.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel

from published.base import PublishedEvent
from shared.envelope import POSITION_PATTERN, SPEC_VERSION
from shared.events import PUBLIC, DomainEvent, EventRegistry, channel_topic

JSON = dict[str, Any]

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{model}"
DEAD_LETTER = "DeadLetteredMessage"
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

DLQ_HEADERS: dict[str, JSON] = {
    "dlq_error": {"type": "string", "description": "the last error: `<ExceptionType>: <message>`, at most 2000 chars"},
    "dlq_topic": {"type": "string", "description": "the topic the message was consumed from (replay goes there)"},
    "dlq_partition": {"type": "string", "pattern": "^[0-9]+$", "description": "its partition there"},
    "dlq_offset": {"type": "string", "pattern": "^[0-9]+$", "description": "its offset there"},
    "dlq_consumer_group": {"type": "string", "description": "the consumer group that gave up on it"},
    "dlq_attempts": {"type": "string", "pattern": "^[0-9]+$", "description": "how many times it was tried"},
    "dlq_failed_at": {"type": "string", "format": "date-time", "description": "when it was dead-lettered"},
}


class AsyncApiError(ValueError):
    """The event classes cannot be described unambiguously (two messages or schemas share a name)."""


def build_document(
    registries: Sequence[EventRegistry],
    inbound: dict[str, type[BaseModel]],
    *,
    title: str = "Trade-union platform events",
    version: str = "1.0.0",
    server: str = "localhost:9092",
) -> JSON:
    """The AsyncAPI document: one channel per topic and its `.dlq`, send for ours, receive for `inbound`."""
    doc = _Builder()
    for registry in sorted(registries, key=lambda r: r.service):
        topic = f"union.{registry.service}.v1"
        channels: dict[str, list[str]] = {}
        for cls in registry.classes():
            if cls.published:
                channels.setdefault(cls.channel, []).append(
                    doc.add_message(cls.event_name(), _own_message(registry, cls, doc))
                )
        for channel, names in sorted(channels.items(), key=lambda c: (c[0] != PUBLIC, c[0])):
            channel_id = registry.service if channel == PUBLIC else f"{registry.service}-{channel}"
            doc.add_channel(
                channel_id,
                channel_topic(topic, channel),
                names,
                action="send",
                description=_own_channel(registry, channel),
            )
    for topic, model in sorted(inbound.items()):
        domain = topic.split(".")[1]
        name = str(model.model_config.get("title") or model.__name__)
        message = _inbound_message(topic, domain, name, model, doc)
        channel_id = "-".join(topic.split(".")[1:-1])
        doc.add_channel(
            channel_id,
            topic,
            [doc.add_message(name, message)],
            action="receive",
            description=f"Inbound: {name} published by {domain} systems; the platform consumes it.",
        )
    return doc.document(title=title, version=version, server=server)


def render_yaml(document: JSON) -> str:
    # a JSON round trip leaves no shared objects, so YAML writes no anchors or aliases
    text: str = yaml.safe_dump(json.loads(json.dumps(document)), sort_keys=True, allow_unicode=True, width=100_000)
    return text


def render_json(document: JSON) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, JSON] = {}
        self.messages: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}
        self.operations: dict[str, JSON] = {}

    def schema_of(self, model: type[BaseModel], exclude: frozenset[str] = frozenset()) -> JSON:
        """The model's JSON Schema, its `$defs` moved to components/schemas, `exclude` fields dropped."""
        schema = copy.deepcopy(model.model_json_schema(ref_template=SCHEMA_REF))
        for name, definition in schema.pop("$defs", {}).items():
            known = self.schemas.setdefault(name, definition)
            if known != definition:
                raise AsyncApiError(f"two different schemas are both named {name!r}")
        properties = schema.get("properties", {})
        for field in exclude:
            properties.pop(field, None)
        if "required" in schema:
            schema["required"] = [f for f in schema["required"] if f not in exclude]
        return schema

    def add_message(self, name: str, message: JSON) -> str:
        if name in self.messages:
            raise AsyncApiError(f"two messages are both named {name!r}")
        self.messages[name] = message
        return name

    def add_channel(self, channel_id: str, topic: str, messages: list[str], *, action: str, description: str) -> None:
        self.channels[channel_id] = {
            "address": topic,
            "description": description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        verb = "publish" if action == "send" else "consume"
        self.operations[f"{verb}-{channel_id}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"{'The platform publishes' if action == 'send' else 'The platform consumes'} {topic}",
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in messages],
        }
        dlq_id = f"{channel_id}-dlq"
        self.channels[dlq_id] = {
            "address": f"{topic}.dlq",
            "description": (
                f"Messages of {topic} that a consumer could not handle after bounded retries: the original key, "
                "value and headers, plus `dlq_*` headers naming the error. Replaying one re-produces it to "
                "`dlq_topic` without the `dlq_*` headers; consumers dedupe by CloudEvents id, so a message that "
                "was applied has no second effect."
            ),
            "messages": {DEAD_LETTER: {"$ref": f"#/components/messages/{DEAD_LETTER}"}},
            "bindings": {"kafka": {"topic": f"{topic}.dlq", "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        self.operations[f"dead-letter-{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{dlq_id}"},
            "summary": f"A consumer of {topic} dead-letters a message that keeps failing",
            "messages": [{"$ref": f"#/channels/{dlq_id}/messages/{DEAD_LETTER}"}],
        }

    def document(self, *, title: str, version: str, server: str) -> JSON:
        messages = {**self.messages, DEAD_LETTER: _dead_letter_message()}
        return {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {
                "title": title,
                "version": version,
                "description": (
                    "The topics of the trade-union platform. Every message is a CloudEvent 1.0 in the Kafka "
                    "protocol binding's binary content mode: attributes in `ce_*` headers, the data as the JSON "
                    "value, the partition key as the message key. Generated from the event classes; do not edit."
                ),
            },
            "defaultContentType": "application/json",
            "servers": {
                "local": {
                    "host": server,
                    "protocol": "kafka",
                    "description": "the embedded development broker (Tansu); Apache Kafka in deployments",
                }
            },
            "channels": self.channels,
            "operations": self.operations,
            "components": {"messages": messages, "schemas": self.schemas},
        }


def _own_channel(registry: EventRegistry, channel: str) -> str:
    if channel == PUBLIC:
        return f"Events published by the {registry.service} service (CloudEvents source `{registry.source}`)."
    return (
        f"Events of the {registry.service} service (CloudEvents source `{registry.source}`) for the platform's "
        "services that need them, never for regional systems: only the principals granted it may read this topic "
        "(deploy/kafka/acls.txt). Compacted and keyed by member, so an erasure replaces what it erases."
    )


def published_as(cls: type[DomainEvent]) -> type[BaseModel]:
    """The class an event is published as: its published-language class (published/), where the producer's event
    derives from one; else the event itself, its private fields left out of the document."""
    for base in cls.__mro__[1:]:
        if issubclass(base, PublishedEvent) and not issubclass(base, DomainEvent):
            return base
    return cls


def _own_message(registry: EventRegistry, cls: type[DomainEvent], doc: _Builder) -> JSON:
    model = published_as(cls)
    payload = doc.schema_of(model, cls.private_fields)
    wire_type = registry.wire_type(cls)
    key = _key_schema(cls, payload)
    message: JSON = {
        "name": cls.event_name(),
        "title": cls.event_name(),
        "summary": f"CloudEvents type `{wire_type}`",
        "contentType": "application/json",
        "payload": payload,
        "headers": _headers(
            source={"type": "string", "const": registry.source},
            wire_type=wire_type,
            required=["ce_subject", "ce_partitionkey", "ce_sequence", "ce_position", "content-type"],
            key_description=key.get("description", ""),
        ),
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if model.__doc__ and "__doc__" in vars(model):
        message["description"] = " ".join(model.__doc__.split())
    return message


def _inbound_message(topic: str, domain: str, name: str, model: type[BaseModel], doc: _Builder) -> JSON:
    wire_type = f"union.{domain}.{name}.v1"
    return {
        "name": name,
        "title": name,
        "summary": f"CloudEvents type `{wire_type}`, published on `{topic}` by {domain} systems",
        "contentType": "application/json",
        "payload": doc.schema_of(model),
        "headers": _headers(
            source={
                "type": "string",
                "pattern": f"^/{domain}/[^/]+$",
                "description": f"`/{domain}/<system>`: the publishing system",
            },
            wire_type=wire_type,
            required=[],
            key_description="the identity-number blind index or the employer's credit code",
        ),
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the identity-number blind index or employer code"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _headers(*, source: JSON, wire_type: str, required: list[str], key_description: str) -> JSON:
    properties: JSON = {
        "ce_specversion": {"type": "string", "const": SPEC_VERSION, "description": "CloudEvents spec version"},
        "ce_id": {"type": "string", "format": "uuid", "description": "unique per event: consumers dedupe by it"},
        "ce_source": source,
        "ce_type": {"type": "string", "const": wire_type},
        "ce_subject": {"type": "string", "description": "the stream id of the event"},
        "ce_time": {"type": "string", "format": "date-time", "description": "when the event was recorded"},
        "ce_partitionkey": {"type": "string", "description": f"equals the message key: {key_description}".strip()},
        "ce_sequence": {"type": "string", "pattern": "^[0-9]+$", "description": "the version in its stream"},
        "ce_correlationid": {
            "type": "string",
            "description": "the chain: the id of the request that began it (or the client's `X-Correlation-Id`)",
        },
        "ce_causationid": {
            "type": "string",
            "description": "what caused this event: the id of a request, or of an event (this service's or another's)",
        },
        "ce_position": {
            "type": "string",
            "pattern": POSITION_PATTERN,
            "description": (
                "the event's position in its producer's log (platform services only; ignored from others). "
                "Increasing per partition; a consumer has read the producer through P when every partition of its "
                "topics is past P or drained. Commands answer with `<service>:<position>` tokens built from it"
            ),
        },
        "ce_traceparent": {"type": "string", "pattern": TRACEPARENT, "description": "W3C trace context"},
        "content-type": {"type": "string", "pattern": "^application/json", "description": "the value's type"},
    }
    return {
        "type": "object",
        "properties": properties,
        "required": sorted({"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", *required}),
    }


def _key_schema(cls: type[DomainEvent], payload: JSON) -> JSON:
    """The message key: the field `partition_key()` returns, found by probing it with named markers."""
    fields = list(cls.model_fields)
    field = None
    try:
        markers: dict[str, Any] = {f: f"<{f}>" for f in fields}
        probe = cls.model_construct(**markers)
        key = probe.partition_key()
        field = next((f for f in fields if key == f"<{f}>"), None)
    except Exception:  # a partition_key() that computes from typed values: describe it generically
        field = None
    if field is None:
        return {"type": "string", "description": "the stream id (ce_subject)"}
    schema: JSON = {"type": "string", "description": f"the event's `{field}`"}
    fmt = payload.get("properties", {}).get(field, {}).get("format")
    if fmt:
        schema["format"] = fmt
    return schema


def _dead_letter_message() -> JSON:
    return {
        "name": DEAD_LETTER,
        "title": "Dead-lettered message",
        "summary": "a message a consumer gave up on, with the error in its headers",
        "description": (
            "Key and value are the original message's (the value may not even be JSON when it was malformed); "
            "the original headers are kept and the `dlq_*` headers added."
        ),
        "payload": {"description": "the original value, unchanged"},
        "headers": {
            "type": "object",
            "properties": copy.deepcopy(DLQ_HEADERS),
            "required": sorted(DLQ_HEADERS),
            "additionalProperties": {"type": "string"},
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the original key"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
