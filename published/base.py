"""What every published event is to its readers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class PublishedEvent(BaseModel):
    """An event as its consumers read it: the fields its producer publishes, typed. A reader ignores fields it does not
    know (a producer may add one within a version); a field removed or changed in meaning is a new version. The
    producer's own event class derives from this one and adds what it keeps to itself (personal data, encrypted)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: ClassVar[int] = 1


class Vocabulary:
    """A producer's published events by name, for its readers: `decode(name, data)` gives the typed event."""

    def __init__(self, source: str, events: Iterable[type[PublishedEvent]]) -> None:
        self.source = source
        self.events: Mapping[str, type[PublishedEvent]] = {cls.__name__: cls for cls in events}

    def decode(self, name: str, data: Mapping[str, Any]) -> PublishedEvent | None:
        """The typed event, or None for a name this vocabulary does not know (a newer producer's: ignored)."""
        cls = self.events.get(name)
        return None if cls is None else cls.model_validate(data)
