"""What each fault case saw, printed as one table at the end of the run and kept in `.run/faults.md`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.faults.stack import MODELS


@dataclass
class Outcome:
    case: str
    approvals: int  # joins whose approval was answered (each a member)
    rows: dict[str, int]  # read model -> rows of this case's members there
    missing: dict[str, int]  # read model -> this case's members it lacks
    doubled: int  # members with more than one row in some read model
    unavailable: int  # 503 answers the load retried
    unexpected: list[str]  # answers outside the contract
    fault: float  # s the fault lasted (a kill: none; a rolling restart, an outage: until it is over)
    flow_back: float | None  # s from the fault's end until a join approved after it was in every read model
    ready: float | None  # s from the fault's end until every /readyz answered 200 (looked at from 1 s after it)
    seconds: float  # the case, from its first join to its last check
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(self.missing.values(), default=0)

    @property
    def verdict(self) -> str:
        faults = []
        if self.lost:
            faults.append(f"LOST {self.lost}")
        if self.doubled:
            faults.append(f"DOUBLED {self.doubled}")
        if self.unexpected:
            faults.append(f"{len(self.unexpected)} UNEXPECTED")
        if self.flow_back is None:
            faults.append("NO FLOW")
        return ", ".join(faults) or "ok"


RESULTS: list[Outcome] = []


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(results: list[Outcome]) -> str:
    header = ["case", "approvals", *MODELS, "doubled", "503s", "fault", "flow back", "ready", "case took", "verdict"]
    rows = [
        [
            r.case,
            str(r.approvals),
            *(str(r.rows.get(m, 0)) for m in MODELS),
            str(r.doubled),
            str(r.unavailable),
            _seconds(r.fault),
            _seconds(r.flow_back),
            _seconds(r.ready),
            _seconds(r.seconds),
            r.verdict,
        ]
        for r in results
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]
    notes = [f"- {r.case}: {note}" for r in results for note in [*r.notes, *r.unexpected[:3]]]
    return "\n".join(lines + (["", *notes] if notes else []))


LEGEND = (
    "Each case runs under a load of joins (application + approval over HTTP, retried with the same "
    "Idempotency-Key until answered). Columns per read model: rows of the case's members there, so each "
    "equals `approvals` when nothing is lost or doubled (MemberJoined: membership's events; CardIssued and "
    "cards: servicecard's events and cards; transfer, feedback: their member directories; dossier: the "
    "CardIssued in membership's inbox). fault: how long the fault lasted (a kill: none; a rolling restart or an "
    "outage: until it was over). flow back: from the fault's end until a join approved after it reached every read "
    "model. ready: from the fault's end until every service process's /readyz answered 200."
)


def write(results: list[Outcome], folder: Path) -> Path:
    path = folder / "faults.md"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"# Fault suite, {stamp}\n\n{LEGEND}\n\n{table(results)}\n")
    return path
