"""Domain events: frozen pydantic models with a stable wire name, a schema version and upcasters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

JSON = dict[str, Any]
Upcaster = Callable[[JSON], JSON]


class DomainEvent(BaseModel):
    """A fact in the past tense. Subclasses set `version` and, where it applies, `private_fields`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: ClassVar[int] = 1
    # fields kept in the event store (personal data encrypted) but never written to a topic
    private_fields: ClassVar[frozenset[str]] = frozenset()
    # events that stay inside the service
    published: ClassVar[bool] = True
    # where a published event goes: the service's public topic (`union.<service>.v1`, which regional systems
    # read), or a named channel of its own (`union.<service>.<channel>.v1`) that only the services granted it read
    channel: ClassVar[str] = "public"

    @classmethod
    def event_name(cls) -> str:
        return cls.__name__

    def partition_key(self) -> str | None:
        """The Kafka key: the member id where the event is about a member."""
        value = getattr(self, "member_id", None)
        return str(value) if value is not None else None

    def public_data(self) -> JSON:
        return self.model_dump(mode="json", exclude=set(self.private_fields))


E = TypeVar("E", bound=type[DomainEvent])

PUBLIC = "public"
RESTRICTED = "restricted"  # read only by the services granted it (deploy/kafka/acls.txt), never by regional systems
CHANNELS = frozenset({PUBLIC, RESTRICTED})
# a platform service's topics: `[prefix.]union.<service>.v<N>` and `[prefix.]union.<service>.restricted.v<N>`
SERVICE_TOPIC = re.compile(r"(?:^|\.)union\.([a-z]+)(?:\.restricted)?\.v\d+$")


def channel_topic(topic: str, channel: str) -> str:
    """The topic of a service's `channel`, from its public topic: (`[prefix.]union.membership.v1`, "restricted")
    -> `[prefix.]union.membership.restricted.v1`."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: one of {sorted(CHANNELS)}")
    if channel == PUBLIC:
        return topic
    base, version = topic.rsplit(".", 1)
    return f"{base}.{channel}.{version}"


def topic_owner(topic: str) -> str | None:
    """The platform service whose topic this is (`membership`), or None (the regional topic, a dead-letter topic)."""
    match = SERVICE_TOPIC.search(topic)
    return match.group(1) if match else None


class UnknownEventError(LookupError):
    pass


class EventRegistry:
    """Maps wire names to classes, and old payloads to the current schema through upcasters."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.source = f"/union/{service}"
        self._classes: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: E) -> E:
        if cls.event_name() in self._classes:
            raise ValueError(f"event {cls.event_name()} registered twice")
        self._classes[cls.event_name()] = cls
        return cls

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a `from_version` payload of `name` into `from_version + 1`."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = fn
            return fn

        return decorate

    def wire_type(self, cls: type[DomainEvent]) -> str:
        return f"union.{self.service}.{cls.event_name()}.v{cls.version}"

    def get(self, name: str) -> type[DomainEvent]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownEventError(name) from None

    def classes(self) -> list[type[DomainEvent]]:
        return list(self._classes.values())

    def decode(self, name: str, schema_version: int, data: JSON) -> DomainEvent:
        cls = self.get(name)
        version = schema_version
        while version < cls.version:
            upcast = self._upcasters.get((name, version))
            if upcast is None:
                raise UnknownEventError(f"no upcaster for {name} v{version}")
            data = upcast(dict(data))
            version += 1
        return cls.model_validate(data)
