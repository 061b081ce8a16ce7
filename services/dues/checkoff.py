"""Check-off remittances (代扣代缴): an organisation's monthly list of member numbers and amounts.

`python -m services.dues.checkoff --org <org_id> --month 2026-10 remittance.csv` (columns `member_no,amount`).
Like the roster import: every line is checked first and every error reported with its line number; nothing is
applied while any line is wrong. Lines are then applied in batches, each one transaction, so a crash leaves whole
batches only, and a re-run applies only what is missing (each payment has a reference per member, organisation and
month). Lines that name no member of the organisation's subtree are reported, and kept with the remittance.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated
from uuid import UUID, uuid4

import asyncpg
import typer
from rich.console import Console

from services.dues import domain
from services.dues.domain import CheckoffLine
from services.dues.events import CheckoffRemittanceImported
from services.dues.handlers import Dues, account_stream, fold_stream
from services.dues.policy import month_of
from services.dues.service import DuesService, DuesSettings
from shared.errors import InvalidInputError, NotFoundError
from shared.events import DomainEvent
from shared.store import Metadata, Stream
from shared.validators import parse_month

console = Console(stderr=True)
cli = typer.Typer(add_completion=False, help=__doc__)

_AMOUNT = re.compile(r"^\d{1,7}(\.\d{1,2})?$")
_MEMBER_NO = re.compile(r"^[0-9A-Za-z-]{1,40}$")


def parse_lines(rows: Sequence[tuple[int, str | None, str | None]]) -> tuple[list[CheckoffLine], list[str]]:
    """(line number, member_no, amount) -> lines, and one message per problem (`line 7: amount: ...`)."""
    lines: list[CheckoffLine] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line_no, raw_no, raw_amount in rows:
        member_no = (raw_no or "").strip()
        amount = (raw_amount or "").strip()
        if not _MEMBER_NO.match(member_no):
            errors.append(f"line {line_no}: member_no: a member number is letters, digits and '-'")
            continue
        if not _AMOUNT.match(amount):
            errors.append(f"line {line_no}: amount: yuan with at most two decimals, e.g. 22.80")
            continue
        try:
            value = Decimal(amount)
        except InvalidOperation:
            errors.append(f"line {line_no}: amount: not a number")
            continue
        if value <= 0:
            errors.append(f"line {line_no}: amount: a payment is more than 0")
            continue
        if member_no in seen:
            errors.append(f"line {line_no}: member_no: the same member as line {seen[member_no]}")
            continue
        seen[member_no] = line_no
        lines.append(CheckoffLine(line_no, member_no, value))
    return lines, errors


def read_file(path: Path) -> tuple[list[CheckoffLine], list[str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], ["line 1: the file is not UTF-8 (from Excel, save as 'CSV UTF-8')"]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in ("member_no", "amount") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"line 1: missing columns: {', '.join(missing)}"]
    rows = [(reader.line_num, row.get("member_no"), row.get("amount")) for row in reader]
    return parse_lines(rows)


@dataclass
class Outcome:
    remittance_id: UUID
    lines: int = 0
    matched: int = 0
    partial: int = 0
    already_applied: int = 0
    total: Decimal = Decimal(0)
    unmatched: list[dict[str, str | int]] = field(default_factory=list)


# the order in which a payment's events come (domain.pay): assessments, the payment, a case closed
_KINDS = {"DuesAssessed": 0, "DuesPaid": 1, "ArrearsCaseClosed": 2}


def kind_by_kind(items: Sequence[tuple[Stream, Sequence[DomainEvent]]]) -> list[tuple[Stream, Sequence[DomainEvent]]]:
    """The batch's events ordered kind after kind (every assessment, then every payment, ...), each stream's own
    events still in their order: the read models then take each kind in one run, set-wise, where one account after
    the other would alternate kinds and cost a round trip per statement (a stream may appear more than once in an
    append). A stream whose events are not in that order (none, today) goes last, whole."""
    last = len(_KINDS) + 1
    phases: dict[int, list[tuple[Stream, Sequence[DomainEvent]]]] = {}
    for stream, events in items:
        runs: dict[int, list[DomainEvent]] = {}
        rank = -1
        for event in events:
            kind = _KINDS.get(type(event).__name__, len(_KINDS))
            if kind < rank:  # out of that order: the stream's events go last, as they are
                runs = {last: list(events)}
                break
            rank = kind
            runs.setdefault(kind, []).append(event)
        for kind, run in runs.items():
            phases.setdefault(kind, []).append((stream, run))
    return [item for rank in sorted(phases) for item in phases[rank]]


async def apply_batch(
    dues: Dues,
    conn: asyncpg.Connection,
    org_id: UUID,
    month: date,
    lines: Sequence[CheckoffLine],
    covered: frozenset[UUID],
    today: date,
    outcome: Outcome,
    meta: Metadata,
) -> None:
    """One batch in the caller's transaction: the accounts locked, matched, every payment appended at once."""
    rows = await conn.fetch(
        "SELECT member_id, member_no FROM dues_accounts WHERE member_no = ANY($1::text[])"
        " ORDER BY member_id FOR UPDATE",
        [line.member_no for line in lines],
    )
    streams = await dues.store.load_many(conn, [account_stream(r["member_id"]) for r in rows])
    accounts = {}
    for r in rows:
        account = fold_stream(streams[account_stream(r["member_id"])])
        if account is not None:
            accounts[r["member_no"]] = account
    policies = await dues.policies(conn)
    matched, unmatched, already = domain.match_checkoff(org_id, month, lines, accounts, covered, policies, today)
    batch = kind_by_kind([(streams[account_stream(m.member_id)], m.events) for m in matched])
    if batch:
        await dues.store.append_streams(conn, batch, meta)
    outcome.lines += len(lines)
    outcome.matched += len(matched)
    outcome.partial += sum(1 for m in matched if m.partial)
    outcome.already_applied += already
    outcome.total += sum((m.line.amount for m in matched), Decimal(0))
    outcome.unmatched += [
        {"line": u.line.line_no, "member_no": u.line.member_no, "amount": str(u.line.amount), "reason": u.reason}
        for u in unmatched
    ]


async def record(
    dues: Dues, conn: asyncpg.Connection, org_id: UUID, month: date, file_name: str, outcome: Outcome, meta: Metadata
) -> None:
    event = CheckoffRemittanceImported(
        remittance_id=outcome.remittance_id,
        org_id=org_id,
        month=month,
        file_name=file_name,
        lines=outcome.lines,
        matched=outcome.matched,
        partial=outcome.partial,
        already_applied=outcome.already_applied,
        total=outcome.total,
        unmatched=outcome.unmatched[:1000],  # the first thousand: a file that matches nothing is a wrong file
    )
    await dues.store.append(conn, Stream(f"remittance-{outcome.remittance_id}"), [event], meta)


async def covered_orgs(conn: asyncpg.Connection, org_id: UUID) -> frozenset[UUID]:
    return frozenset(r[0] for r in await conn.fetch("SELECT org_id FROM directory_subtree($1)", org_id))


def summary(outcome: Outcome) -> dict[str, object]:
    return {
        "remittance_id": outcome.remittance_id,
        "lines": outcome.lines,
        "matched": outcome.matched,
        "partial": outcome.partial,
        "already_applied": outcome.already_applied,
        "unmatched": outcome.unmatched,
        "total": f"{outcome.total:.2f}",
    }


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cyclic collector rarely while the import runs. Each batch makes some hundred thousand short-lived
    objects (rows, events, accounts) and none of them in cycles, so at the default thresholds the collector ran
    a full collection every few batches, rescanning the whole heap (the file's lines with it): about a quarter of
    the import's time in the profile. Reference counting still frees every batch as it ends."""
    thresholds = gc.get_threshold()
    gc.freeze()  # what is alive now (the file's lines, the service) is never garbage during the run: not scanned
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def run_import(
    path: Path, org_id: UUID, month: date, settings: DuesSettings, *, batch_size: int = 2000, concurrency: int = 2
) -> Outcome:
    lines, errors = await asyncio.to_thread(read_file, path)  # the whole file checked off the event loop
    service = DuesService(settings)
    await service.runtime.start(background=False)
    try:
        async with service.pool.acquire() as conn:
            if not await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", org_id):
                errors.append(f"org_id {org_id}: no such organisation")
            covered = await covered_orgs(conn, org_id)
        today = datetime.now(UTC).date()
        if month > month_of(today):
            errors.append(f"month {month:%Y-%m}: dues are remitted for months that have begun")
        if errors:
            for error in errors[:200]:
                console.print(f"[red]{error}[/red]")
            console.print(f"[red]{len(errors)} problems: nothing applied[/red]")
            raise typer.Exit(1)
        meta = Metadata(actor=f"checkoff:{path.name}")
        outcome = Outcome(uuid4())
        started = time.perf_counter()
        chunks = [lines[start : start + batch_size] for start in range(0, len(lines), batch_size)]
        chunks.reverse()

        async def apply_chunks() -> None:
            while chunks:
                chunk = chunks.pop()
                async with service.pool.acquire() as conn:
                    async with conn.transaction():
                        await apply_batch(service.dues, conn, org_id, month, chunk, covered, today, outcome, meta)
                    await service.store.notify(conn)

        # two batches in flight (a member is on one line only, so on one batch): one is matched here while the
        # database writes the other
        with fewer_collections():
            await asyncio.gather(*(apply_chunks() for _ in range(concurrency)))
        async with service.pool.acquire() as conn, conn.transaction():
            await record(service.dues, conn, org_id, month, path.name, outcome, meta)
        elapsed = time.perf_counter() - started
        console.print(
            f"{outcome.matched} paid ({outcome.partial} partial), {len(outcome.unmatched)} unmatched, "
            f"{outcome.already_applied} already applied; {len(lines) / max(elapsed, 1e-9):,.0f} lines/s"
        )
        return outcome
    finally:
        await service.runtime.stop()


@cli.command()
def main(
    remittance: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with columns member_no, amount")],
    org: Annotated[str, typer.Option(help="the remitting organisation's id")],
    month: Annotated[str, typer.Option(help="the month remitted, YYYY-MM")],
) -> None:
    """Import a check-off remittance (settings from the environment, like the service)."""
    try:
        first_day = parse_month(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    asyncio.run(run_import(remittance, UUID(org), first_day, DuesSettings()))


if __name__ == "__main__":
    cli()


async def apply_remittance(
    dues: Dues,
    conn: asyncpg.Connection,
    org_id: UUID,
    month: date,
    file_name: str,
    lines: Sequence[CheckoffLine],
    errors: list[str],
    today: date,
    meta: Metadata,
) -> dict[str, object]:
    """A small remittance in one transaction (the HTTP route): all lines or, with any error, none."""
    if month > month_of(today):
        errors = [*errors, "month: dues are remitted for months that have begun"]
    if errors:
        raise InvalidInputError("lines", "; ".join(errors[:50]))
    if not await conn.fetchval("SELECT 1 FROM directory_orgs WHERE org_id = $1", org_id):
        raise NotFoundError("organization", org_id)
    outcome = Outcome(uuid4())
    await apply_batch(dues, conn, org_id, month, lines, await covered_orgs(conn, org_id), today, outcome, meta)
    await record(dues, conn, org_id, month, file_name, outcome, meta)
    return summary(outcome)
