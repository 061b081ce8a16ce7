"""A tiny service on the kernel, for the kernel's tests and benchmarks: counters that count."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from shared.events import DomainEvent, EventRegistry
from shared.projections import Projection, Statements, stmt
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
def on_counter_incremented(entry: Recorded) -> Statements:
    return [
        stmt(
            "INSERT INTO counter_totals (counter_id, total, events) VALUES ($1, $2, 1) "
            "ON CONFLICT (counter_id) DO UPDATE SET total = counter_totals.total + $2, events = "
            "counter_totals.events + 1",
            UUID(str(entry.data["counter_id"])),
            int(entry.data["by"]),
        )
    ]


@totals.on("RemoteCounterIncremented", source="/union/remote")
def on_remote_counter_incremented(entry: Recorded) -> Statements:
    return on_counter_incremented(entry)


MIGRATIONS = Path(__file__).parent / "probe_migrations"


def definition(consumes: dict[str, object] | None = None) -> ServiceDefinition:
    return ServiceDefinition("kerneltest", registry, MIGRATIONS, [totals], dict(consumes or {}))  # type: ignore[arg-type]
