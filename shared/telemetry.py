"""OpenTelemetry, set up once per process; the exporter is chosen by the standard OTEL_* variables.

Off by default: with `OTEL_TRACES_EXPORTER` unset (or `none`) no spans are made at all. Trace context
rides in the envelope's `traceparent` extension, and so in the `ce_traceparent` Kafka header.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False
_tracing = False  # spans go somewhere (an exporter, or a test's processor)
_metrics = False  # metrics go somewhere (an exporter)


def setup_telemetry(service_name: str, extra_processor: SpanProcessor | None = None) -> None:
    global _configured, _tracing, _metrics  # noqa: PLW0603 - a process has one tracer provider, set once
    if _configured:
        return
    _configured = True
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    )
    exporter: SpanExporter | None = None
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        exporter = OTLPSpanExporter()
    elif exporter_name == "console":
        exporter = ConsoleSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]  # SQL spans only when traces go somewhere
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    if exporter is not None or extra_processor is not None:
        # with nowhere to send spans, the API's no-op tracer stays: a span per published and consumed message
        # would cost more CPU than the message itself (measured: 10-15% of the relay and the consumer)
        trace.set_tracer_provider(provider)
        _tracing = True
    _metrics = _setup_metrics(os.environ.get("OTEL_METRICS_EXPORTER", "none").strip().lower(), provider.resource)


def _setup_metrics(exporter_name: str, resource: Resource) -> bool:
    from opentelemetry import metrics  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )

    exporter: MetricExporter
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

        exporter = OTLPMetricExporter()
    elif exporter_name == "console":
        exporter = ConsoleMetricExporter()
    else:
        return False
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)])
    )
    return True


def tracing() -> bool:
    """Whether spans are recorded: without that, per-message span work can be skipped (it would change nothing)."""
    return _tracing


def exporting() -> bool:
    """Whether spans or metrics go anywhere: the per-request instrumentation of the web layer is worth its cost."""
    return _tracing or _metrics


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Run the block inside the trace that `traceparent` names (if any)."""
    if not traceparent:
        yield
        return
    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
