"""The kernel test service as a process, for tests that SIGKILL it: `python -m tests.support.kernel_proc`.

Settings come from the environment like any service's. CRASH_AFTER_HANDLED=N kills the process (SIGKILL)
right after the transaction that consumed the N-th message commits, before its offset is committed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from uuid import UUID

import asyncpg

from devstack import probe as kernel_app
from shared.consumer import ConsumerRunner
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Recorded


async def record_effect(conn: asyncpg.Connection, entry: Recorded) -> None:
    if entry.data.get("poison"):
        raise RuntimeError("this message always fails")
    if entry.data.get("wait_for_lock"):  # a lock another transaction holds: not granted within 50 ms, a conflict
        await conn.execute("SET LOCAL lock_timeout = '50ms'")
        await conn.execute("SELECT pg_advisory_xact_lock(42, 7)")
    await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", UUID(str(entry.event_id)))


def crash_after(runner: ConsumerRunner, limit: int) -> None:
    original = runner._count

    def count_then_maybe_die(topic: str, applied: int, duplicates: int) -> None:
        original(topic, applied, duplicates)
        if runner.handled >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    runner._count = count_then_maybe_die  # type: ignore[method-assign]


async def main() -> None:
    settings = KernelSettings()
    runtime = Runtime(kernel_app.definition({"union.remote.v1": record_effect}), settings)
    await runtime.start(background=False)
    tasks = [asyncio.create_task(runtime.relay.run())]
    if os.environ.get("WITH_CONSUMER") == "1" and runtime.consumer is not None:
        if limit := int(os.environ.get("CRASH_AFTER_HANDLED", "0")):
            crash_after(runtime.consumer, limit)
        tasks.append(asyncio.create_task(runtime.consumer.run()))
    print("ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())
