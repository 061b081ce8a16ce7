"""`make bench`: one run, one table (also written to docs/benchmarks.md)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

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
