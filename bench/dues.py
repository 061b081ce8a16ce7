"""The dues service's figures: a 100,000-line check-off remittance against the store appending the same events
with nothing to read or match (measured in the same run), then its re-run (which applies nothing)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import typer

from bench.brokers import Brokers
from services.dues.checkoff import run_import
from services.dues.events import DuesAccountOpened, DuesAssessed, DuesPaid, WageBaseDeclared
from services.dues.handlers import account_stream
from services.dues.service import DuesService, DuesSettings
from shared.events import DomainEvent
from shared.store import Metadata, Stream


def settings(dsn: str, bootstrap: str) -> DuesSettings:
    return DuesSettings(
        database_url=dsn, db_schema="bench_dues", kafka_bootstrap_servers=bootstrap, topic_prefix="bench."
    )


async def accounts(s: DuesSettings, n: int, month: date) -> uuid.UUID:
    """`n` members of one township union, each with a wage base: what the consumer would have built from joins."""
    org = uuid.uuid4()
    service = DuesService(s)
    await service.runtime.start(background=False)
    meta = Metadata(actor="bench")
    try:
        async with service.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO directory_orgs (org_id, name, type, region_code, accepts_members)"
                " VALUES ($1, 'bench township', 'township', '310115', true)",
                org,
            )
        for start in range(0, n, 5000):
            batch: list[tuple[Stream, Sequence[DomainEvent]]] = []
            for i in range(start, min(start + 5000, n)):
                member_id = uuid.uuid4()
                batch.append(
                    (
                        Stream(account_stream(member_id)),
                        [
                            DuesAccountOpened(
                                member_id=member_id,
                                member_no=f"B-{i:08d}",
                                org_id=org,
                                joined_at=month,
                                opened_on=month,
                            ),
                            WageBaseDeclared(
                                member_id=member_id,
                                monthly_base=Decimal(3000 + i % 5000),
                                from_month=month,
                                source="bench",
                            ),
                        ],
                    )
                )
            async with service.pool.acquire() as conn, conn.transaction():
                await service.store.append_streams(conn, batch, meta)
    finally:
        await service.runtime.stop()
    return org


async def append_only(s: DuesSettings, n: int, month: date) -> float:
    """Lines/s of the store alone: each line's two events (the month assessed, the payment) for `n` new accounts,
    appended kind after kind in batches of 2,000 with their read models, with no file, no account read, no match:
    what the import would cost if finding and deciding were free."""
    org = uuid.uuid4()
    today = datetime.now(UTC).date()
    service = DuesService(s)
    await service.runtime.start(background=False)
    meta = Metadata(actor="bench")
    try:
        start = time.perf_counter()
        for first in range(0, n, 2000):
            members = [uuid.uuid4() for _ in range(first, min(first + 2000, n))]
            streams = {m: Stream(account_stream(m)) for m in members}
            batch: list[tuple[Stream, Sequence[DomainEvent]]] = []
            for m in members:
                assessed = DuesAssessed(
                    member_id=m, org_id=org, month=month, liable=True, wage_base=Decimal(4000), rate=Decimal("0.005"),
                    amount=Decimal("20.00"), policy_from=date(1978, 11, 1),
                )  # fmt: skip
                batch.append((streams[m], [assessed]))
            for m in members:
                paid = DuesPaid(
                    member_id=m, org_id=org, month=month, amount=Decimal("20.00"), paid_by="checkoff",
                    payment_ref=f"bench:{m}", paid_on=today,
                )  # fmt: skip
                batch.append((streams[m], [paid]))
            async with service.pool.acquire() as conn, conn.transaction():
                await service.store.append_streams(conn, batch, meta)
        return n / (time.perf_counter() - start)
    finally:
        await service.runtime.stop()


def write_remittance(path: Path, n: int) -> None:
    """Every member paid in full, except every tenth line short by a yuan (partial); 100 lines name nobody."""
    lines = ["member_no,amount"]
    for i in range(n - 100):
        due = (Decimal(3000 + i % 5000) // 10 * 10 * Decimal("0.005")).quantize(Decimal("0.01"))
        lines.append(f"B-{i:08d},{due - 1 if i % 10 == 0 else due}")
    lines += [f"X-{i:08d},10.00" for i in range(100)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def checkpoint(dsn: str) -> None:
    """The writes so far on disk: no checkpoint they call for lands in the next timing."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def run(dsn: str, brokers: Brokers, work: Path) -> list[tuple[str, str, str]]:
    bootstrap = brokers.tansu.bootstrap  # Tansu's figures only
    n = 100_000
    s = settings(dsn, bootstrap)
    month = datetime.now(UTC).date().replace(day=1)
    org = await accounts(s, n - 100, month)
    path = work / "remittance.csv"
    write_remittance(path, n)
    bad = work / "remittance-bad.csv"
    bad.write_text(path.read_text(encoding="utf-8") + "B-00000001,abc\n", encoding="utf-8")
    try:
        await run_import(bad, org, month, s)
        raise AssertionError("a file with an error applied")
    except typer.Exit:
        pass  # errors by line, nothing applied
    await checkpoint(dsn)
    start = time.perf_counter()
    outcome = await run_import(path, org, month, s)
    first = time.perf_counter() - start
    assert (outcome.matched, outcome.partial, len(outcome.unmatched)) == (n - 100, (n - 100 + 9) // 10, 100)
    start = time.perf_counter()
    again = await run_import(path, org, month, s)
    second = time.perf_counter() - start
    assert (again.matched, again.already_applied) == (0, n - 100)
    await checkpoint(dsn)
    ceiling = await append_only(s, 20_000, month)
    return [
        (
            "check-off import, 100,000 lines",
            f"{n / first:,.0f} lines/s, {first:.1f} s (10% partial, 100 unmatched)",
            f"the store appending the same events alone {ceiling:,.0f} lines/s: {n / first / ceiling:.0%}",
        ),
        ("check-off re-run, 100,000 lines", f"{n / second:,.0f} lines/s", f"{second:.1f} s (nothing applied twice)"),
    ]
