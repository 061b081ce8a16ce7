"""The roster import: errors by line number, nothing half-imported, re-runs import only what is missing."""

from __future__ import annotations

import asyncio
import csv
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from services.membership.importer import COLUMNS, read_roster, run_import
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_membership import tree
from tests.support import data
from tests.support.procs import ROOT, settings_env


def write_roster(path: Path, org_id: str, n: int, **overrides: dict[int, dict[str, str]]) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        row = {
            "org_id": org_id,
            "name": f"工人{chr(0x4E00 + i % 20_000)}",  # names have no digits; bench imports 100,000 of these
            "id_number": data.identity_number(),
            "phone": data.phone(),
            "employer_credit_code": "",
            "employer_name": "",
            "employment_type": "regular",
            "household_type": "rural",
            "joined_at": "2019-05-01",
        }
        row.update(overrides.get("lines", {}).get(i, {}))
        rows.append(row)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


async def members_in(m: ServiceUnderTest, org_id: str) -> int:
    async with m.service.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM members WHERE org_id = $1::uuid", org_id))


async def test_errors_are_reported_by_line_and_nothing_is_imported(
    membership: ServiceUnderTest,
    membership_settings: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    orgs = await tree(membership)
    roster = tmp_path / "roster.csv"
    rows = write_roster(
        roster,
        orgs["township"],
        6,
        lines={1: {"id_number": "110105194912310021"}, 3: {"phone": "999"}, 4: {"org_id": orgs["county"]}},
    )
    rows[5]["id_number"] = rows[0]["id_number"]
    with roster.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(typer.Exit):
        await run_import(roster, 100, membership_settings, show_progress=False)
    err = capsys.readouterr().err
    assert "line 3: id_number: identity number check character should be X, not 1" in err
    assert "line 5: phone:" in err
    assert "line 7: id_number: the same person as line 2" in err
    assert f"org_id {orgs['county']}: does not hold members" in err
    assert await members_in(membership, orgs["township"]) == 0


def test_a_roster_saved_in_gbk_is_refused_with_the_line_and_how_to_fix_it(tmp_path: Path) -> None:
    roster = tmp_path / "excel.csv"
    header = ",".join(COLUMNS)
    line = ",".join(["00000000-0000-0000-0000-000000000001", "李娜", "11010519491231002X", "13812345678"] + [""] * 5)
    roster.write_bytes(f"{header}\n{line}\n".encode("gbk"))
    members, errors = read_roster(roster)
    assert members == []
    assert errors == ["line 2: the file is not UTF-8 (from Excel, save as 'CSV UTF-8'; GBK: iconv -f GBK -t UTF-8)"]


async def test_a_killed_import_rerun_imports_only_what_is_missing(
    membership: ServiceUnderTest,
    membership_settings: Any,
    tmp_path: Path,
) -> None:
    orgs = await tree(membership)
    roster = tmp_path / "roster.csv"
    rows = write_roster(roster, orgs["township"], 3000)
    env = settings_env(membership_settings)
    with (tmp_path / "import.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.membership.importer", str(roster), "--batch-size", "50"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while await members_in(membership, orgs["township"]) < 500 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # its worker processes die with it; a batch whose COMMIT had already reached the database may still land
    await asyncio.sleep(1)
    partial = await members_in(membership, orgs["township"])
    assert 0 < partial < 3000
    assert partial % 50 == 0, "a batch was half-imported"
    imported = await run_import(roster, 500, membership_settings, show_progress=False)
    assert imported == 3000 - partial
    assert await members_in(membership, orgs["township"]) == 3000
    async with membership.service.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(DISTINCT member_no) FROM members") == 3000
        assert await conn.fetchval("SELECT count(*) FROM persons") == 3000
    page = (await membership.get(f"/organizations/{orgs['township']}/members", params={"limit": 1})).json()
    [member] = page["items"]
    assert member["joined_at"] == "2019-05-01"
    assert member["name"] in {r["name"] for r in rows}
    assert await run_import(roster, 500, membership_settings, show_progress=False) == 0


async def test_an_import_shared_between_processes_imports_each_member_once(
    membership: ServiceUnderTest, membership_settings: Any, tmp_path: Path
) -> None:
    orgs = await tree(membership)
    roster = tmp_path / "roster.csv"
    write_roster(roster, orgs["township"], 400)
    assert await run_import(roster, 20, membership_settings, show_progress=False, processes=2) == 400
    assert await members_in(membership, orgs["township"]) == 400
    async with membership.service.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(DISTINCT member_no) FROM members") == 400
        joined = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'MemberJoined'")
    assert joined == 400
    assert await run_import(roster, 20, membership_settings, show_progress=False, processes=2) == 0
