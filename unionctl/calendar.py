"""`unionctl calendar`: check a State Council notice file, and load it as the year's working-day calendar.

The file is TOML, one a year, shaped as `shared/notices/2026.toml`. `check` needs nothing but the file; `load` sends
it to the membership service (`PUT /calendars/{year}`, an admin's token), which checks it again, records it and
counts the year's provisional clocks again on it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from shared import workdays

app = typer.Typer(help="The working-day calendar: check and load the State Council's notice of a year.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

NoticeFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the notice as a TOML file")]


def _checked(path: Path) -> workdays.Notice:
    try:
        return workdays.read_notice(path)
    except workdays.NoticeError as exc:
        err.print(f"{path}: {len(exc.problems)} problem(s); nothing was loaded")
        for field, reason in exc.problems:
            err.print(f"  {field}: {reason}")
        raise typer.Exit(1) from None


@app.command("check")
def check(path: NoticeFile) -> None:
    """Check a notice file: every problem listed, exit 1 if any; the days where chinese-calendar disagrees."""
    notice = _checked(path)
    days = sum(len(f.off) for f in notice.festivals)
    worked = sum(len(f.worked) for f in notice.festivals)
    out.print(f"{notice.year}: {notice.number} of {notice.published}, {days} days off, {worked} weekend days worked")
    differences = notice.package_differences()
    if differences is None:
        out.print("chinese-calendar does not know the year: nothing to compare")
    elif differences:
        out.print(f"chinese-calendar disagrees on {', '.join(map(str, differences))}")
    else:
        out.print("chinese-calendar agrees on every day")


@app.command("load")
def load(
    path: NoticeFile,
    url: Annotated[str, typer.Option("--url", envvar="MEMBERSHIP_URL", help="the membership service")] = (
        "http://127.0.0.1:8001"
    ),
    token: Annotated[str, typer.Option("--token", envvar="UNIONCTL_TOKEN", help="an admin's bearer token")] = "",
    accept_package_differences: Annotated[
        bool, typer.Option(help="load it even where chinese-calendar disagrees (the notice is the law)")
    ] = False,
    replaces: Annotated[
        str | None, typer.Option(help="a correction: the number of the notice loaded for the year that it replaces")
    ] = None,
) -> None:
    """Load a notice as its year's calendar; prints each provisional clock it moved."""
    notice = _checked(path)
    body: dict[str, Any] = json.loads(json.dumps(tomllib.loads(path.read_text("utf-8")), default=str))
    body["accept_package_differences"] = accept_package_differences
    body["replaces"] = replaces
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.put(f"{url.rstrip('/')}/calendars/{notice.year}", json=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        err.print(f"could not reach {url}: {exc}")
        raise typer.Exit(2) from None
    is_json = r.headers.get("content-type", "").startswith("application/json")
    answer: dict[str, Any] = r.json() if is_json else {"detail": r.text}
    if r.status_code != 200:
        err.print(f"refused ({r.status_code} {answer.get('code', '')}): {answer.get('detail', '')}")
        for e in answer.get("errors", []):
            err.print(f"  {e['field']}: {e['reason']}")
        raise typer.Exit(1)
    if not answer["loaded"]:
        out.print(f"{notice.year}: {notice.number} was loaded already; nothing changed")
        return
    out.print(f"{notice.year}: {notice.number} loaded; {answer['unchanged']} provisional clock(s) kept their deadline")
    for clock in answer["recounted"]:
        out.print(f"  {clock['kind']} {clock['id']}: {clock['previous_deadline']} -> {clock['deadline']}")
