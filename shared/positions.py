"""Position tokens: `membership:1234` names a position in one service's log.

A command's answer carries the token of what it wrote; a read anywhere may pass tokens back (shared/consistency.py
waits until the service has read that far). The store notes every append here, so the command that caused it can
name its position without the handlers passing positions up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from shared.errors import InvalidInputError
from shared.events import PUBLIC, DomainEvent

MAX_TOKENS = 16
POSITION_HEADER = "X-Position"  # on a command's answer: the token of what it wrote
AFTER_HEADER = "X-After-Position"  # on a read (or a command): tokens to wait for, like the `after` parameter
_SERVICE, _POSITION = r"[a-z][a-z0-9_]{0,39}", r"[0-9]{1,18}"  # 18 digits always fit PostgreSQL's bigint
TOKEN = f"{_SERVICE}:{_POSITION}"
# one or more tokens separated by commas (a query parameter or a header)
TOKENS_PATTERN = f"^ *{TOKEN}( *, *{TOKEN})* *$"
_TOKEN = re.compile(f"^({_SERVICE}):({_POSITION})$")


@dataclass(frozen=True, order=True)
class Token:
    service: str
    position: int

    def __str__(self) -> str:
        return f"{self.service}:{self.position}"


def parse_tokens(text: str | None, field: str) -> list[Token]:
    """`membership:12, transfer:40` -> tokens, the highest per service; a malformed list is a 422 naming `field`."""
    if text is None or not text.strip():
        return []
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > MAX_TOKENS:
        raise InvalidInputError(field, f"at most {MAX_TOKENS} position tokens")
    best: dict[str, int] = {}
    for part in parts:
        match = _TOKEN.match(part)
        if match is None:
            raise InvalidInputError(field, f"{part[:60]!r} is not a position token such as membership:1234")
        best[match[1]] = max(best.get(match[1], 0), int(match[2]))
    return [Token(service, position) for service, position in sorted(best.items())]


class _Entry(Protocol):
    @property
    def position(self) -> int: ...
    @property
    def event(self) -> DomainEvent | None: ...


class Written:
    """What one command appended. Its token is the highest position it published on its service's public topic
    (the one every other service reads), else the highest it published anywhere, else the highest it wrote."""

    def __init__(self) -> None:
        self.service: str | None = None
        self._public = self._published = self._any = 0

    def note(self, service: str, entries: Sequence[_Entry]) -> None:
        self.service = service
        for entry in entries:
            self._any = max(self._any, entry.position)
            if entry.event is not None and entry.event.published:
                self._published = max(self._published, entry.position)
                if entry.event.channel == PUBLIC:
                    self._public = max(self._public, entry.position)

    def token(self) -> Token | None:
        position = self._public or self._published or self._any
        return Token(self.service, position) if self.service is not None and position else None


_written: ContextVar[Written | None] = ContextVar("written", default=None)


def note_written(service: str, entries: Sequence[_Entry]) -> None:
    """Called by the store after every append: the command being recorded (if any) learns its positions."""
    written = _written.get()
    if written is not None:
        written.note(service, entries)


@contextmanager
def recording() -> Iterator[Written]:
    """Collect the positions appended by the code run inside (in this task and the tasks it awaits)."""
    written = Written()
    reset = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(reset)
