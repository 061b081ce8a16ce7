"""`make bench`: start a durable PostgreSQL and the brokers of our own, measure, print one table, record it.

Every part measures on Tansu; the flow and replicas parts also on a three-node Apache Kafka cluster, started under
`.run/bench/kafka` before the first of them and stopped after the last.

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

from bench import Row, dues, feedback, flow, kernel, membership, replicas, servicecard
from bench.brokers import REPLICAS, Brokers
from devstack import procs
from devstack.broker import CLIENT_ENV, TansuBroker
from devstack.kafka import kafka_version
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


# what limits the rows of replicas against one: a profile by hand (py-spy record on each replica, `top`, during the
# Kafka runs), written under the table
REPLICAS_NOTE = f"""\
What limits the rows of {REPLICAS} replicas against 1: on two cores a second process of a service brings no core of its
own. From a profile by hand (py-spy on each replica and `top` during the Kafka runs, 2026-12-07, another test
sharing the machine): one membership process answering approvals was runnable in 98% of its samples on 0.6 of a
core, CPU-bound in its request path (uvicorn and Starlette's middleware; the approve command, a third of all
samples in asyncpg's statement execution; the relay 5%), with PostgreSQL taking 0.55 of a core and the three Kafka
nodes 0.3. With two, each replica got 0.26-0.28 of a core and was runnable 70-80% of the time, the machine 0% idle:
the two shared what the one had. A card service replica catching up was runnable 50-75% of the time on 0.2-0.4 of a
core: the consumer's handler (the cards written through asyncpg), the envelopes' pydantic models, and in the replica
that relays, aiokafka's pure-Python producer (a fifth of its samples). A second replica gains only what it overlaps
of the first's waits (one consumer handles its partitions' batches one after another, each a database commit then an
offset commit to Kafka), and only while a core is free: the ratio swung from ×0.66 to ×1.5 with the other load that
day. The cores each kind of process used are in the rows."""

PARTS = {
    "kernel": kernel,
    "membership": membership,
    "flow": flow,
    "replicas": replicas,
    "servicecard": servicecard,
    "feedback": feedback,
    "dues": dues,
}


ON_KAFKA = {"flow", "replicas"}  # the parts that measure on the Apache Kafka cluster too


async def measure(dsn: str, brokers: Brokers, names: Sequence[str]) -> list[Row]:
    work = procs.run_dir() / "bench"
    work.mkdir(exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        if not ON_KAFKA & set(names[i:]):
            brokers.stop_kafka()  # its idle nodes would take their share of the cores from the later parts
        # each part starts with the earlier parts' writes on disk, so no checkpoint of theirs lands in its timings
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
        for row in await PARTS[name].run(dsn, brokers, work):
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
    try:
        tansu = TansuBroker(procs.free_port(), root).start()
    except BaseException:
        postgres.stop()
        raise
    # Tansu's clients: no idempotent producer, a short group session (on Kafka each service's own variables, from
    # the cluster, replace them: bench/brokers.py)
    os.environ.update(CLIENT_ENV)
    brokers = Brokers(tansu, root)
    try:
        version = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        rows = asyncio.run(measure(postgres.dsn, brokers, names))
    finally:
        brokers.stop_kafka()
        tansu.stop()
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
    (procs.ROOT_DIR / "docs").mkdir(exist_ok=True)
    (procs.ROOT_DIR / "docs" / "benchmarks.md").write_text(markdown(rows, version), encoding="utf-8")


def markdown(rows: Sequence[Row], version: str) -> str:
    """docs/benchmarks.md: what was measured on what, the table, what limits the replicas' rows."""
    kafka_name = Brokers.KAFKA
    lines = [
        "# Benchmarks",
        "",
        "The latest `make bench`, measured in one run, everything on the same machine as the benchmark:",
        "PostgreSQL 18 (embedded, fsync on) and two brokers. A row is measured on the Tansu broker (memory only;",
        "its clients without the idempotent producer, a 3 s group session) unless it names another. The rows that",
        f'name "{kafka_name}" are measured on a cluster of Apache Kafka {kafka_version()} (KRaft, replication',
        "factor 3, `min.insync.replicas=2`, SASL/SCRAM and the ACLs of deploy/kafka/, each service signed in as its",
        "own principal with Kafka's client defaults: idempotent producer, 10 s session). The flow rows come in",
        f'pairs, "(Tansu)" then "({kafka_name})", each pair measured by the same code in the same run; the',
        f"rows of {REPLICAS} replicas against 1 are on Kafka only.",
        "",
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {version}",
        f"- machine: {machine()}",
        "",
        "| what | measured | against |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", REPLICAS_NOTE]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
