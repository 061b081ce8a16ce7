"""`make bench`: one run, one table (also written to docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import asyncpg
import orjson

from devstack import procs
from devstack.tokens import Issuer


def admin_headers() -> dict[str, str]:
    """An admin's token from the issuer `make bench` set up (AUTH_JWKS's folder)."""
    issuer = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent)
    return {"Authorization": f"Bearer {issuer.mint('admin', name='bench')}"}


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole response, read before the connection goes back to the pool."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class LoadClient:
    """The benchmark's HTTP client, on aiohttp.

    It shares the two cores with the services it measures, so its own cost is part of every latency it reports.
    httpx spent 5.4 ms of CPU per request with 32 connections (its pool is known to be slow under concurrency:
    encode/httpx#3215), 80% of a core in the redemption run; aiohttp spends 0.3 ms.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        async with self._session.get(path, headers=headers) as r:
            return Reply(r.status, await r.read())

    async def post(self, path: str, *, json: Any = None, headers: dict[str, str] | None = None) -> Reply:
        async with self._session.post(path, json=json, headers=headers) as r:
            return Reply(r.status, await r.read())


@asynccontextmanager
async def http_client(
    url: str, clients: int = 1, *, timeout: float = 30, headers: dict[str, str] | None = None
) -> AsyncIterator[LoadClient]:
    """`clients` connections that are never reused once idle for 2 s (uvicorn closes an idle connection after 5 s; a
    request sent on it as it closes fails)."""
    connector = aiohttp.TCPConnector(limit=clients, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(
        url,
        connector=connector,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=timeout),
        json_serialize=lambda value: orjson.dumps(value).decode(),
    ) as session:
        yield LoadClient(session)


Row = tuple[str, str, str]  # what, measured, against: one line of the table


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """Each live process's CPU time so far, user and system (/proc/<pid>/stat); a process gone is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            # the command name (field 2) is in parentheses and may hold spaces: split after it
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


class CpuShares:
    """The cores each group of processes used while the `with` block ran: what it took of the machine's.

    `groups` is asked at the start and at the end (a database backend opened meanwhile counts from zero); a process
    that ended meanwhile is not counted at all."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self._groups = groups
        self._start: dict[int, float] = {}
        self._started = 0.0
        self.cores: dict[str, float] = {}

    def __enter__(self) -> Self:
        self._start = cpu_seconds(pid for pids in self._groups().values() for pid in pids)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        elapsed = time.perf_counter() - self._started
        for name, pids in self._groups().items():
            now = cpu_seconds(pids)
            self.cores[name] = sum(now[pid] - self._start.get(pid, 0.0) for pid in now) / elapsed

    def __str__(self) -> str:
        return ", ".join(f"{name} {cores:.2f}" for name, cores in self.cores.items())


def compared(before: CpuShares, after: CpuShares) -> str:
    """Two measurements' cores, group by group: `name before → after`."""
    return ", ".join(f"{name} {cores:.2f} → {after.cores[name]:.2f}" for name, cores in before.cores.items())


async def postgres_pids(dsn: str) -> Callable[[], list[int]]:
    """PostgreSQL's processes, asked anew each time: the postmaster (a backend's parent) and its children."""
    conn = await asyncpg.connect(dsn)
    try:
        postmaster = _parent(int(await conn.fetchval("SELECT pg_backend_pid()")))  # while the backend lives
    finally:
        await conn.close()
    return lambda: [postmaster, *procs.children(postmaster)]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
