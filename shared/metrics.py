"""The platform's metrics through the OpenTelemetry SDK: appended, handled, dead-lettered, backlogs, lag.

Instruments bind to whatever meter provider the process sets (`setup_telemetry` sets one when
`OTEL_METRICS_EXPORTER` is `otlp` or `console`; tests set an in-memory reader).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

_meter = metrics.get_meter("union.kernel")

events_appended = _meter.create_counter("union.events.appended", unit="{event}", description="events appended")
messages_handled = _meter.create_counter(
    "union.consumer.handled", unit="{message}", description="consumed messages applied (duplicates excluded)"
)
messages_dead_lettered = _meter.create_counter(
    "union.consumer.dead_lettered", unit="{message}", description="messages sent to a dead-letter topic"
)


Source = Callable[[], Iterable[tuple[float, dict[str, str]]]]
_sources: dict[str, list[Source]] = {}


def _gauge(name: str, description: str, unit: str) -> None:
    """A gauge read from values the loops keep in memory (callbacks must not do I/O), over live runtimes."""

    def callback(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for source in _sources.get(name, []) for value, attributes in source()]

    _meter.create_observable_gauge(name, callbacks=[callback], unit=unit, description=description)


_gauge("union.outbox.backlog", "events the relay has not published yet (at its last look)", "{event}")
_gauge("union.consumer.lag", "messages behind the end of each partition", "{message}")
_gauge("union.dlq.count", "messages this process dead-lettered", "{message}")


def observe(name: str, source: Source) -> Callable[[], None]:
    """Add a source to a gauge; returns the function that removes it (when its runtime stops)."""
    _sources.setdefault(name, []).append(source)
    return lambda: _sources[name].remove(source)
