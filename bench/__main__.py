"""`make bench`: start a durable PostgreSQL and a broker of our own, measure, print one table, record it.

`python -m bench feedback` (any part names) measures those parts only, prints them and records nothing.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from bench import dues, feedback, flow, kernel, membership, servicecard
from devstack import procs
from devstack.broker import CLIENT_ENV, TansuBroker
from devstack.postgres import EmbeddedPostgres
from devstack.tokens import Issuer


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) // 1024 // 1024
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Python {platform.python_version()}, {platform.system()}"


PARTS = {
    "kernel": kernel,
    "membership": membership,
    "flow": flow,
    "servicecard": servicecard,
    "feedback": feedback,
    "dues": dues,
}


async def measure(dsn: str, bootstrap: str, names: Sequence[str]) -> list[tuple[str, str, str]]:
    work = procs.run_dir() / "bench"
    work.mkdir(exist_ok=True)
    rows = []
    for part in (PARTS[name] for name in names):
        # each part starts with the earlier parts' writes on disk, so no checkpoint of theirs lands in its timings
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
        for row in await part.run(dsn, bootstrap, work):
            Console(stderr=True).print("  " + " | ".join(row))
            rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    names = list(argv if argv is not None else sys.argv[1:]) or list(PARTS)
    if unknown := set(names) - set(PARTS):
        raise SystemExit(f"no bench part {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
    root = procs.run_dir() / "bench"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # the services verify tokens from this issuer; the benchmark's clients send an admin's
    os.environ["AUTH_JWKS"] = str(Issuer.open(root / "auth").jwks_path)
    os.environ.setdefault("APPLICATION_RATE_PER_ADDRESS", "1000000/minute")  # every client is 127.0.0.1
    # durable (fsync on): the figures are what a real deployment would pay
    postgres = EmbeddedPostgres(root / "pg", procs.free_port()).start(durable=True)
    broker = TansuBroker(procs.free_port(), root).start()
    os.environ.update(CLIENT_ENV)  # Tansu: no idempotent producer, a short group session
    try:
        version = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        rows = asyncio.run(measure(postgres.dsn, broker.bootstrap, names))
    finally:
        broker.stop()
        postgres.stop()
    table = Table(title=f"make bench: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {version}")
    for column in ("what", "measured", "against"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    Console().print(machine())
    if names != list(PARTS):
        return  # docs/benchmarks.md holds one whole run
    lines = [
        "# Benchmarks",
        "",
        "The latest `make bench`, measured in one run. PostgreSQL 18 (embedded, fsync on) and the",
        "Tansu broker (memory) on the same machine as the benchmark.",
        "",
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {version}",
        f"- machine: {machine()}",
        "",
        "| what | measured | against |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    (procs.ROOT_DIR / "docs").mkdir(exist_ok=True)
    (procs.ROOT_DIR / "docs" / "benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
