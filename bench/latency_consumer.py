"""The far end of the latency benchmark: a consumer in its own process, recording append-to-handled time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from devstack import probe
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Recorded


async def record_latency(conn: asyncpg.Connection, entry: Recorded) -> None:
    latency_ms = (datetime.now(UTC) - entry.recorded_at).total_seconds() * 1000
    await conn.execute(
        "INSERT INTO effects (event_id, applied) VALUES ($1, $2)", entry.event_id, round(latency_ms * 1000)
    )


async def main() -> None:
    settings = KernelSettings()
    runtime = Runtime(probe.definition({"union.kerneltest.v1": record_latency}), settings)
    await runtime.start(background=False)
    assert runtime.consumer is not None
    print("ready", flush=True)
    await runtime.consumer.run()


if __name__ == "__main__":
    asyncio.run(main())
