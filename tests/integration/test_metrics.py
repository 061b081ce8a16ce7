"""The platform's metrics, read through the OpenTelemetry SDK as an exporter would see them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from devstack.probe import CounterIncremented
from shared.runtime import Runtime
from shared.store import Metadata, Stream
from tests.conftest import Stack
from tests.integration.test_consumer import _handled, remote_event, runner
from tests.support.kafka import produce

_reader = InMemoryMetricReader()


@pytest.fixture(scope="module")
def reader() -> InMemoryMetricReader:
    metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))
    return _reader


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[float, dict[str, object]]]:
    data = reader.get_metrics_data()
    return [
        (p.value, dict(p.attributes or {}))
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


async def test_appends_backlog_handled_and_dead_letters_are_measured(
    reader: InMemoryMetricReader,
    kernel: Runtime,
    topics: list[str],
    stack: Stack,
    kernel_settings,
    unique: str,
) -> None:
    before = sum(v for v, a in points(reader, "union.events.appended") if a.get("service") == "kerneltest")
    counter = uuid.uuid4()
    async with kernel.pool.acquire() as conn:
        await kernel.store.append(
            conn, Stream(f"counter-{counter}"), [CounterIncremented(counter_id=counter, by=1)] * 3, Metadata()
        )
    appended = sum(v for v, a in points(reader, "union.events.appended") if a.get("service") == "kerneltest")
    assert appended - before == 3
    kernel.relay.batch_size = 2
    await kernel.relay.publish_batch()  # a full batch: at least 2 waited
    assert (2, {"service": "kerneltest"}) in points(reader, "union.outbox.backlog")
    await kernel.relay.publish_batch()
    assert (0, {"service": "kerneltest"}) in points(reader, "union.outbox.backlog")

    await produce(stack.bootstrap, topics[1], [remote_event(counter, poison=True), remote_event(counter, by=2)])
    consuming = runner(kernel, kernel_settings, f"g{unique}")
    task = asyncio.create_task(consuming.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not await _handled(consuming, 2):
            assert loop.time() < deadline
            await asyncio.sleep(0.1)
    finally:
        consuming.request_stop()
        await asyncio.wait_for(task, 10)
    handled = [v for v, a in points(reader, "union.consumer.handled") if a.get("topic") == topics[1]]
    dead = [v for v, a in points(reader, "union.consumer.dead_lettered") if a.get("topic") == topics[1]]
    assert (handled, dead) == ([1], [1])
