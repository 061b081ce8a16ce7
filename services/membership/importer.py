"""Bulk import of rosters approved on paper: `python -m services.membership.importer roster.csv`.

Every line is validated first and every error reported with its line number; nothing is imported while
any line is wrong. Members are then imported in batches, each batch one transaction, so a crash leaves
whole batches only, and a re-run skips the people already on the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ctypes
import io
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, NamedTuple
from uuid import UUID

import typer
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from services.membership.api import CreditCode, IdNumber, Mobile, Name
from services.membership.domain import EmploymentType, HouseholdType
from services.membership.handlers import PaperMember, Person
from services.membership.service import MembershipService, MembershipSettings
from shared.store import Metadata

COLUMNS = [
    "org_id",
    "name",
    "id_number",
    "phone",
    "employer_credit_code",
    "employer_name",
    "employment_type",
    "household_type",
    "joined_at",
]
console = Console(stderr=True)
cli = typer.Typer(add_completion=False, help=__doc__)


class RosterLine(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID
    name: Name
    id_number: IdNumber
    phone: Mobile
    employer_credit_code: CreditCode | None = None
    employer_name: str | None = None
    employment_type: EmploymentType
    household_type: HouseholdType
    joined_at: date


def read_roster(path: Path) -> tuple[list[PaperMember], list[str]]:
    """Every valid line, and one message per problem: `line 7: id_number: check character should be X, not 3`."""
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = raw_bytes.count(b"\n", 0, exc.start) + 1
        return [], [
            f"line {line_no}: the file is not UTF-8 (from Excel, save as 'CSV UTF-8'; GBK: iconv -f GBK -t UTF-8)"
        ]
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            return [], [f"line 1: missing columns: {', '.join(missing)}"]
        lines = [
            (line_no, {k: (v if v != "" else None) for k, v in raw.items() if k in COLUMNS})
            for line_no, raw in _numbered(reader)
        ]
    # in this process: at 14 µs a line, validating costs less than sending lines to other processes and back
    validated = _validate(lines)
    members: list[PaperMember] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    orgs: dict[str, UUID] = {}  # a roster names few organisations: one UUID each
    for line_no, line, problems in validated:
        errors.extend(problems)
        if line is None:
            continue
        key = line.id_number  # normalised by its validator (IdNumber)
        if key in seen:
            errors.append(f"line {line_no}: id_number: the same person as line {seen[key]}")
            continue
        seen[key] = line_no
        org_id = orgs.setdefault(line.org_id, UUID(line.org_id))
        members.append(line.paper_member(org_id))
    return members, errors


class _Valid(NamedTuple):
    """A valid line as plain values."""

    org_id: str
    name: str
    id_number: str
    phone: str
    employer_credit_code: str | None
    employer_name: str | None
    employment_type: str
    household_type: str
    joined_at: date

    def paper_member(self, org_id: UUID) -> PaperMember:
        person = Person(
            self.name,
            self.id_number,
            self.phone,
            EmploymentType(self.employment_type),
            HouseholdType(self.household_type),
            self.employer_credit_code,
            self.employer_name,
        )
        return PaperMember(org_id, person, self.joined_at)


def _validate(lines: list[tuple[int, dict[str, str | None]]]) -> list[tuple[int, _Valid | None, list[str]]]:
    """Each line's values once valid, or the reasons it is not."""
    out: list[tuple[int, _Valid | None, list[str]]] = []
    for line_no, values in lines:
        try:
            r = RosterLine.model_validate(values)
            valid = _Valid(
                str(r.org_id),
                r.name,
                r.id_number,
                r.phone,
                r.employer_credit_code,
                r.employer_name,
                r.employment_type.value,
                r.household_type.value,
                r.joined_at,
            )
            out.append((line_no, valid, []))
        except ValidationError as exc:
            problems = [
                f"line {line_no}: {'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            out.append((line_no, None, problems))
    return out


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    for row in reader:
        yield reader.line_num, row


async def check_organizations(service: MembershipService, members: list[PaperMember]) -> list[str]:
    async with service.pool.acquire() as conn:
        rows = {
            r["org_id"]: r
            for r in await conn.fetch(
                "SELECT org_id, accepts_members, status FROM organizations WHERE org_id = ANY($1::uuid[])",
                list({m.org_id for m in members}),
            )
        }
    problems = []
    for org_id in sorted({m.org_id for m in members}, key=str):
        row = rows.get(org_id)
        if row is None:
            problems.append(f"org_id {org_id}: no such organisation")
        elif not row["accepts_members"] or row["status"] != "active":
            problems.append(f"org_id {org_id}: does not hold members")
    return problems


async def run_import(
    path: Path,
    batch_size: int,
    settings: MembershipSettings,
    *,
    show_progress: bool = True,
    concurrency: int = 2,
    processes: int | None = None,
    niceness: int = 10,
) -> int:
    """Validate the whole roster, then import it in batches; returns how many were new to the platform.

    The batches are shared between worker processes (`processes`, default one per core and at most 2: one alone
    is held by its own Python, encrypting, hashing and building events, not by the database), each with its own
    pool and `concurrency` batches in flight. The workers run `niceness` below the services: an import is a batch
    job, and on a shared host the services it feeds, and members' requests, go first."""
    members, errors = read_roster(path)
    service = MembershipService(settings)
    await service.runtime.start(background=False)
    try:
        errors += await check_organizations(service, members) if members else []
    finally:
        await service.runtime.stop()
    if errors:
        for error in errors:
            console.print(f"[red]{error}[/red]")
        console.print(f"[red]{len(errors)} problems: nothing imported[/red]")
        raise typer.Exit(1)
    meta = Metadata(actor=f"import:{path.name}")
    chunks = [members[start : start + batch_size] for start in range(0, len(members), batch_size)]
    workers = min(processes or min(os.cpu_count() or 1, 2), max(len(chunks) // (2 * concurrency), 1))
    started = time.perf_counter()
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("import", total=len(members))
        imported = (
            await _in_processes(settings, chunks, meta, concurrency, workers, niceness, progress, task) if chunks else 0
        )
    elapsed = time.perf_counter() - started
    console.print(
        f"{imported} imported, {len(members) - imported} already on the platform, "
        f"{len(members) / max(elapsed, 1e-9):,.0f} lines/s"
    )
    return imported


async def _import_chunks(
    settings: MembershipSettings,
    chunks: list[list[PaperMember]],
    meta: Metadata,
    concurrency: int,
    advance: Callable[[int], object],
    parent: int,
) -> int:
    """Each chunk in its own transaction, `concurrency` at a time: one is encrypted and hashed here while the
    database writes another. It stops between batches once `parent` is gone."""
    service = MembershipService(settings)
    await service.runtime.start(background=False)
    pending = list(reversed(chunks))

    async def one_at_a_time() -> int:
        count = 0
        while pending and os.getppid() == parent:
            chunk = pending.pop()
            async with service.pool.acquire() as conn:
                async with conn.transaction():
                    count += await service.membership.import_members(conn, chunk, meta)
                await service.runtime.store.notify(conn)
            advance(len(chunk))
        return count

    try:
        return sum(await asyncio.gather(*(one_at_a_time() for _ in range(concurrency))))
    finally:
        await service.runtime.stop()


async def _in_processes(
    settings: MembershipSettings,
    chunks: list[list[PaperMember]],
    meta: Metadata,
    concurrency: int,
    workers: int,
    niceness: int,
    progress: Progress,
    task: TaskID,
) -> int:
    """The chunks dealt out to `workers` processes; each reports every batch it committed, then its total."""
    # forked: a child starts at once with its share in memory. This process holds no connection by now (the
    # service that checked the organisations has stopped); a child runs its own loop and pool.
    context = multiprocessing.get_context("fork")
    reports: multiprocessing.Queue[tuple[str, int | str]] = context.Queue()
    children = [
        context.Process(
            target=_worker,
            args=(settings, chunks[i::workers], meta, concurrency, niceness, reports, os.getpid()),
            daemon=True,
        )
        for i in range(workers)
    ]
    for child in children:
        child.start()
    imported, done, failures = 0, 0, []
    try:
        while done < workers:
            try:
                kind, value = await asyncio.to_thread(reports.get, timeout=1)
            except queue.Empty:
                if any(c.exitcode not in {None, 0} for c in children):
                    failures.append("a worker process died")
                    break
                continue
            if kind == "batch":
                progress.advance(task, int(value))
            elif kind == "done":
                imported, done = imported + int(value), done + 1
            else:
                failures.append(str(value))
                done += 1
    finally:
        for child in children:
            child.join(timeout=30)
    if failures:
        console.print(f"[red]the import stopped: {'; '.join(failures)}. A re-run imports what is missing.[/red]")
        raise typer.Exit(1)
    return imported


def _die_with(parent: int) -> None:
    """Linux: this process is killed when the one that started it dies, so a killed import stops whole, as a single
    process would, its open batches rolled back (elsewhere the worker stops at its next batch)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _worker(
    settings: MembershipSettings,
    chunks: list[list[PaperMember]],
    meta: Metadata,
    concurrency: int,
    niceness: int,
    reports: multiprocessing.Queue[tuple[str, int | str]],
    parent: int,
) -> None:
    _die_with(parent)
    os.nice(niceness)
    try:
        count = asyncio.run(
            _import_chunks(settings, chunks, meta, concurrency, lambda n: reports.put(("batch", n)), parent)
        )
    except BaseException as exc:  # told to the parent, which reports it and exits non-zero
        reports.put(("failed", repr(exc)))
        raise
    reports.put(("done", count))


@cli.command()
def main(
    roster: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with columns: " + ", ".join(COLUMNS))
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="members per transaction")] = 500,
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="worker processes (default: one per core, at most 2)")
    ] = None,
    nice: Annotated[
        int, typer.Option(min=0, max=19, help="the workers' CPU priority below the services' (a batch job yields)")
    ] = 10,
) -> None:
    """Import a roster approved on paper (settings from the environment, like the service)."""
    asyncio.run(run_import(roster, batch_size, MembershipSettings(), processes=processes, niceness=nice))


if __name__ == "__main__":
    cli()
