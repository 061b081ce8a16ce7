"""Ready means caught up: a service is not ready before its consumer holds its partitions and has handled what
they held when it started, nor while its relay cannot reach the broker or the broker lacks its topic."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaProducer

from devstack import probe
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Recorded
from tests.conftest import Stack
from tests.integration.test_consumer import effects, remote_event
from tests.support.kafka import options as kafka_options
from tests.support.kernel_proc import record_effect

WAITING = 300


async def slow_effect(conn: object, entry: Recorded) -> None:
    await record_effect(conn, entry)  # type: ignore[arg-type]
    await asyncio.sleep(0.003)  # catching up takes a while, long enough to be seen


async def missing(runtime: Runtime) -> list[str]:
    return [m for m in await asyncio.gather(*(check() for check in runtime.ready_checks())) if m is not None]


async def test_not_ready_until_the_consumer_caught_up_with_what_was_waiting(
    stack: Stack, kernel_settings: KernelSettings, topics: list[str]
) -> None:
    counter = uuid.uuid4()  # one key: one partition, in multi-record batches (Tansu's ListOffsets is low after those)
    producer = AIOKafkaProducer(**kafka_options(stack.bootstrap), linger_ms=50)
    await producer.start()
    try:
        sent = [
            await producer.send(topics[1], value, key=key, headers=headers)
            for key, headers, value in (remote_event(counter) for _ in range(WAITING))
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    runtime = Runtime(
        probe.definition({"union.remote.v1": slow_effect}), kernel_settings.model_copy(update={"run_consumers": True})
    )
    await runtime.start()
    try:
        reasons: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while parts := await missing(runtime):
            reasons += parts
            assert loop.time() < deadline, parts
            await asyncio.sleep(0.05)
        assert len(await effects(runtime)) == WAITING  # ready only once every waiting message was handled
        assert any(r.startswith("consumer: ") and "behind" in r for r in reasons), reasons
        assert runtime.consumer is not None
        assert runtime.consumer.caught_up
    finally:
        await runtime.stop()


async def test_not_ready_while_the_broker_lacks_the_service_topic(
    stack: Stack, kernel_settings: KernelSettings
) -> None:
    """A memory-only broker that restarted answers, without its topics: the relay has nowhere to publish."""
    settings = kernel_settings.model_copy(update={"topic_prefix": f"nowhere{uuid.uuid4().hex[:6]}."})
    runtime = Runtime(probe.definition(), settings)
    await runtime.start()
    try:
        parts = await missing(runtime)
        assert any(p.startswith("relay: broker has no topic") for p in parts), parts
    finally:
        await runtime.stop()
