"""Concurrent writers for the gap tests: some hold their transaction open, so later positions commit first."""

from __future__ import annotations

import asyncio
import uuid

from devstack.probe import CounterIncremented
from shared.runtime import Runtime
from shared.store import Metadata, Stream

META = Metadata(actor="test")


async def write_concurrently(kernel: Runtime, seconds: float, writers: int = 16) -> list[uuid.UUID]:
    """`writers` writers appending 1 to 3 events per transaction for `seconds`; the ids of every event committed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    written: list[uuid.UUID] = []

    async def writer() -> None:
        counter = uuid.uuid4()
        stream = Stream(f"counter-{counter}")
        while loop.time() < deadline:
            async with kernel.pool.acquire() as conn, conn.transaction():
                events = [CounterIncremented(counter_id=counter, by=1)] * (1 + len(written) % 3)
                recorded = await kernel.store.append(conn, stream, events, META)
                if len(written) % 7 == 0:
                    await asyncio.sleep(0.01)  # held open: a later position commits first
            written.extend(r.event_id for r in recorded)

    await asyncio.gather(*(writer() for _ in range(writers)))
    return written
