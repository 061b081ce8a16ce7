"""Bulk import of rosters approved on paper: `python -m services.membership.importer roster.csv`.

Every line is validated first and every error reported with its line number; nothing is imported while
any line is wrong. Members are then imported in batches, each batch one transaction, so a crash leaves
whole batches only, and a re-run skips the people already on the platform.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Annotated, NamedTuple
from uuid import UUID

import typer
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
    # validating is most of a big roster's reading: spread over the cores, in chunks, in line order
    chunks = [lines[i : i + _CHUNK] for i in range(0, len(lines), _CHUNK)]
    if len(chunks) > 1 and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(chunks))) as pool:
            validated = [line for chunk in pool.map(_validate, chunks) for line in chunk]
    else:
        validated = [line for chunk in chunks for line in _validate(chunk)]
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


_CHUNK = 5000


class _Valid(NamedTuple):
    """A valid line as plain values: what a worker process sends back (cheap to pickle)."""

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
    """Each line's values once valid, or the reasons it is not (run in a worker process for big rosters)."""
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
    path: Path, batch_size: int, settings: MembershipSettings, *, show_progress: bool = True, concurrency: int = 2
) -> int:
    members, errors = read_roster(path)
    service = MembershipService(settings)
    await service.runtime.start(background=False)
    try:
        errors += await check_organizations(service, members) if members else []
        if errors:
            for error in errors:
                console.print(f"[red]{error}[/red]")
            console.print(f"[red]{len(errors)} problems: nothing imported[/red]")
            raise typer.Exit(1)
        meta = Metadata(actor=f"import:{path.name}")
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
            chunks = [members[start : start + batch_size] for start in range(0, len(members), batch_size)]

            async def import_chunks() -> int:
                count = 0
                while chunks:
                    chunk = chunks.pop(0)
                    async with service.pool.acquire() as conn:
                        async with conn.transaction():
                            count += await service.membership.import_members(conn, chunk, meta)
                        await service.runtime.store.notify(conn)
                    progress.advance(task, len(chunk))
                return count

            # two batches in flight: one is encrypted and hashed here while the database writes the other
            imported = sum(await asyncio.gather(*(import_chunks() for _ in range(concurrency))))
        elapsed = time.perf_counter() - started
        console.print(
            f"{imported} imported, {len(members) - imported} already on the platform, "
            f"{len(members) / max(elapsed, 1e-9):,.0f} lines/s"
        )
        return imported
    finally:
        await service.runtime.stop()


@cli.command()
def main(
    roster: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with columns: " + ", ".join(COLUMNS))
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="members per transaction")] = 500,
) -> None:
    """Import a roster approved on paper (settings from the environment, like the service)."""
    asyncio.run(run_import(roster, batch_size, MembershipSettings()))


if __name__ == "__main__":
    cli()
