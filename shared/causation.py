"""The causation chain: every event names the chain it belongs to (the correlation id of the request that began
it) and what caused it (the request, or the event it was decided on). An event decided on another event, in
this service or in another across a topic, carries the chain on with `caused_by`."""

from __future__ import annotations

from shared.store import Metadata, Recorded


def caused_by(entry: Recorded, actor: str) -> Metadata:
    """The metadata of what `entry` (a consumed message, or one of this service's own events) causes: the same
    correlation id (the entry's own id if it began a chain itself), the entry as the cause, the trace carried on."""
    meta = entry.metadata
    return Metadata(
        actor=actor,
        correlation_id=_text(meta.get("correlation_id")) or str(entry.event_id),
        causation_id=str(entry.event_id),
        traceparent=_text(meta.get("traceparent")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
