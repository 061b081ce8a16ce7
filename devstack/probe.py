"""A tiny service on the kernel, for the kernel's tests and benchmarks: counters that count."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import asyncpg

from shared.events import DomainEvent, EventRegistry
from shared.projections import Projection, batch_handler
from shared.runtime import ServiceDefinition
from shared.store import Recorded

registry = EventRegistry("kerneltest")


@registry.register
class CounterIncremented(DomainEvent):
    version = 2
    counter_id: UUID
    by: int
    note: str = ""
    secret: str | None = None
    private_fields = frozenset({"secret"})

    def partition_key(self) -> str:
        return str(self.counter_id)


@registry.upcaster("CounterIncremented", 1)
def _v1_to_v2(data: dict[str, object]) -> dict[str, object]:
    # v1 called the amount `amount`
    data["by"] = data.pop("amount")
    return data


totals = Projection("counter_totals", tables=["counter_totals"])


@totals.on("CounterIncremented")
@batch_handler
async def on_counters_incremented(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    """Summed in memory, one row written per counter and batch."""
    totals_by: dict[UUID, list[int]] = {}
    for entry in entries:
        total = totals_by.setdefault(UUID(str(entry.data["counter_id"])), [0, 0])
        total[0] += int(entry.data["by"])
        total[1] += 1
    await conn.execute(
        "INSERT INTO counter_totals (counter_id, total, events)"
        " SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::int[])"
        " ON CONFLICT (counter_id) DO UPDATE SET total = counter_totals.total + excluded.total,"
        " events = counter_totals.events + excluded.events",
        list(totals_by),
        [t[0] for t in totals_by.values()],
        [t[1] for t in totals_by.values()],
    )


@totals.on("RemoteCounterIncremented", source="/union/remote")
@batch_handler
async def on_remote_counters_incremented(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    await on_counters_incremented(conn, entries)


MIGRATIONS = Path(__file__).parent / "probe_migrations"


def definition(consumes: dict[str, object] | None = None) -> ServiceDefinition:
    return ServiceDefinition("kerneltest", registry, MIGRATIONS, [totals], dict(consumes or {}))  # type: ignore[arg-type]
