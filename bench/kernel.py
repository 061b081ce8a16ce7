"""The kernel's figures: append against a plain INSERT in the same run, read-all, rebuild, end-to-end latency."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from bench.brokers import Brokers
from devstack import probe
from devstack.procs import ROOT_DIR
from shared.messaging import create_topics
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Metadata, Stream

META = Metadata(actor="bench")
Row = tuple[str, ...]

PLAIN = """
CREATE TABLE IF NOT EXISTS plain_events (
    id bigserial PRIMARY KEY, stream_id text NOT NULL, version int NOT NULL, event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, recorded_at timestamptz NOT NULL,
    UNIQUE (stream_id, version))
"""


async def timed(total: int, writers: int, work: Callable[[int], Awaitable[None]]) -> float:
    """Events per second when `writers` tasks share `total` events."""
    per_writer = total // writers
    start = time.perf_counter()
    await asyncio.gather(*(work(per_writer) for _ in range(writers)))
    return per_writer * writers / (time.perf_counter() - start)


def event(counter: uuid.UUID) -> probe.CounterIncremented:
    return probe.CounterIncremented(counter_id=counter, by=1, note="bench")


async def append_rates(runtime: Runtime, writers: int, batch: int, total: int) -> tuple[float, float]:
    pool = runtime.pool

    async def store_writer(n: int) -> None:
        counter = uuid.uuid4()
        stream = Stream(f"counter-{counter}")
        async with pool.acquire() as conn:
            for _ in range(n // batch):
                await runtime.store.append(conn, stream, [event(counter)] * batch, META)

    async def plain_writer(n: int) -> None:
        counter = str(uuid.uuid4())
        data = json.dumps({"counter_id": counter, "by": 1, "note": "bench"})
        meta = json.dumps(META.as_json())
        version = 0
        async with pool.acquire() as conn:
            for _ in range(n // batch):
                versions = list(range(version + 1, version + batch + 1))
                version += batch
                # every row its own data and metadata, as every event has: not one value parsed once for all rows
                await conn.execute(
                    "INSERT INTO plain_events (stream_id, version, event_id, event_type, data, metadata, recorded_at) "
                    "SELECT $1, v, e, 'CounterIncremented', d, m, now() "
                    "FROM unnest($2::int[], $5::uuid[], $3::jsonb[], $4::jsonb[]) AS t(v, e, d, m)",
                    counter,
                    versions,
                    [data] * batch,
                    [meta] * batch,
                    [uuid.uuid4() for _ in versions],
                )

    # alternated, three of each, medians: this machine's speed drifts by a third within minutes, and one pair
    # measured back to back moved the ratio by 20 points between runs
    stores, plains = [], []
    for _ in range(3):
        stores.append(await timed(total, writers, store_writer))
        plains.append(await timed(total, writers, plain_writer))
    return statistics.median(stores), statistics.median(plains)


async def read_all_rate(runtime: Runtime) -> tuple[float, int]:
    start, after, count = time.perf_counter(), 0, 0
    while batch := await runtime.store.read_all(after, 5000):
        after = batch[-1].position
        count += len(batch)
    return count / (time.perf_counter() - start), count


async def rebuild_rate(runtime: Runtime) -> float:
    start = time.perf_counter()
    replayed = await runtime.projections.rebuild("counter_totals")
    return replayed / (time.perf_counter() - start)


async def latency(settings: KernelSettings, runtime: Runtime, samples: int, log_dir: Path) -> tuple[float, float]:
    """Append -> relay -> Kafka -> consumer in another process (its transaction committed), p50 and p99 in ms."""
    consumer_settings = settings.model_copy(update={"db_schema": settings.db_schema + "_far"})
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT_DIR),
        **{k.upper(): str(v) for k, v in consumer_settings.model_dump().items()},
    }
    with (log_dir / "bench-consumer.log").open("wb") as log:
        far = subprocess.Popen(
            [sys.executable, "-m", "bench.latency_consumer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT_DIR,
        )
    relay = asyncio.create_task(runtime.relay.run())
    far_pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=2, server_settings={"search_path": consumer_settings.db_schema}
    )
    try:
        counter = uuid.uuid4()
        stream = Stream(f"counter-{counter}")
        # warm up: the consumer joins its group and sees the first event
        async with runtime.pool.acquire() as conn:
            await runtime.store.append(conn, stream, [event(counter)], META)
        await _wait_rows(far_pool, 1, 60)
        async with runtime.pool.acquire() as conn:
            for _ in range(samples):
                await runtime.store.append(conn, stream, [event(counter)], META)
                await asyncio.sleep(0.01)
        await _wait_rows(far_pool, samples + 1, 60)
        values = [r["applied"] / 1000 for r in await far_pool.fetch("SELECT applied FROM effects OFFSET 1")]
    finally:
        relay.cancel()
        far.terminate()
        far.wait()
        await far_pool.close()
    q = statistics.quantiles(values, n=100)
    return q[49], q[98]


async def _wait_rows(pool: asyncpg.Pool, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await pool.fetchval("SELECT count(*) FROM effects") >= n:
                return
        except asyncpg.UndefinedTableError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer handled fewer than {n} events in {timeout}s")
        await asyncio.sleep(0.05)


async def run(dsn: str, brokers: Brokers, log_dir: Path) -> list[tuple[str, str, str]]:
    bootstrap = brokers.tansu.bootstrap  # Tansu's figures only
    settings = KernelSettings(
        database_url=dsn,
        db_schema="bench_kernel",
        kafka_bootstrap_servers=bootstrap,
        topic_prefix="bench.",
        relay_poll_interval=0.05,
        db_pool_size=40,
    )
    await create_topics(bootstrap, [settings.topic("union.kerneltest.v1")], partitions=3)
    runtime = Runtime(probe.definition(), settings)
    await runtime.start(background=False)
    runtime.store.project = None  # the store's own cost: read models are the services' (and the rebuild's)
    rows: list[tuple[str, str, str]] = []
    try:
        await runtime.pool.execute(PLAIN)
        for writers in (1, 8, 32):
            store, plain = await append_rates(runtime, writers, 1, 4000 if writers == 1 else 12000)
            rows.append(
                (
                    f"append, 1 event per call, {writers} writers",
                    f"{store:,.0f} events/s",
                    f"plain INSERT {plain:,.0f} rows/s: {store / plain:.0%}"
                    + (" (target ≥ 60%)" if writers == 32 else ""),
                )
            )
        for writers in (1, 8):
            store, plain = await append_rates(runtime, writers, 100, 100_000)
            rows.append(
                (
                    f"append, 100 events per call, {writers} writers",
                    f"{store:,.0f} events/s",
                    f"plain INSERT…unnest {plain:,.0f} rows/s: {store / plain:.0%} (target ≥ 60%)",
                )
            )
        rate, count = await read_all_rate(runtime)
        rows.append((f"read all ({count:,} events, pages of 5,000)", f"{rate:,.0f} events/s", ""))
        rebuilt = await rebuild_rate(runtime)
        rows.append(
            (
                "projection rebuild (counter totals)",
                f"{rebuilt:,.0f} events/s",
                f"read all {rate:,.0f} events/s: {rebuilt / rate:.0%} (target ≥ 50%)",
            )
        )
        async with runtime.pool.acquire() as conn:
            # the latency run measures fresh events only: what is in the log already counts as published
            await conn.execute("UPDATE relay_state SET position = (SELECT max(position) FROM events)")
        p50, p99 = await latency(settings, runtime, 500, log_dir)
        rows.append(
            (
                "append → relay → Kafka → consumer in another process",
                f"p50 {p50:.1f} ms",
                f"p99 {p99:.1f} ms (500 events, 100/s)",
            )
        )
    finally:
        await runtime.stop()
    return rows
