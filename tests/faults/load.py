"""A steady load of joins over HTTP, as clients that retry do: each application and approval carries an
Idempotency-Key and is sent again, with the same key, until it has a definite answer. With several replicas of
membership the workers share them out, and a request no replica answered goes to the next one, as a load balancer
would send it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import data

RETRY_PAUSE = 0.2
UNAVAILABLE = {"database_unavailable", "broker_unavailable"}  # the 503 contract: retry after a while


def _code(response: httpx.Response) -> str | None:
    try:
        return str(response.json().get("code"))
    except ValueError:  # not JSON: a plain-text error page is exactly what must not happen
        return None


@dataclass
class JoinLoad:
    membership: str | list[str]  # its URL, or its replicas'
    org_id: str
    staff: dict[str, str]  # the Authorization header of the organisation's staff, who approve
    workers: int = 3
    pause: float = 0.05  # between one worker's joins: a load the two shared cores can carry
    approved: dict[str, float] = field(default_factory=dict)  # member id -> when its approval was answered
    unavailable: int = 0  # 503 answers, retried
    unreachable: int = 0  # no answer at all (refused, reset), retried
    unexpected: list[str] = field(default_factory=list)  # anything else: the case fails
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [self.membership] if isinstance(self.membership, str) else list(self.membership)

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(self.workers)]

    async def stop(self, timeout: float = 120) -> None:
        """Let every worker finish the join it began (its retries included), then stop."""
        self._stopping.set()
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            task.result()
        assert not pending, f"{len(pending)} joins still unanswered after {timeout}s"

    def approved_since(self, moment: float) -> list[str]:
        return [member for member, at in self.approved.items() if at > moment]

    async def _worker(self, number: int) -> None:
        urls = self.urls
        turn = [number % len(urls)]  # the replica this worker sends to; the next one after a failure
        async with httpx.AsyncClient(timeout=10) as client:
            while not self._stopping.is_set():
                await self._join(client, urls, turn)
                await asyncio.sleep(self.pause)

    async def _join(self, client: httpx.AsyncClient, urls: list[str], turn: list[int]) -> None:
        key = uuid.uuid4().hex
        applied = await self._until_answered(
            client, urls, turn, "/applications", data.application(self.org_id), {"Idempotency-Key": f"apply-{key}"}, 201
        )
        if applied is None:
            return
        approved = await self._until_answered(
            client,
            urls,
            turn,
            f"/applications/{applied['application_id']}/approve",
            {},
            {"Idempotency-Key": f"approve-{key}", **self.staff},
            200,
        )
        if approved is not None:
            self.approved[approved["member_id"]] = time.monotonic()

    async def _until_answered(
        self,
        client: httpx.AsyncClient,
        urls: list[str],
        turn: list[int],
        path: str,
        body: object,
        headers: dict[str, str],
        expected: int,
    ) -> Any:
        while True:
            try:
                response = await client.post(urls[turn[0]] + path, json=body, headers=headers)
            except httpx.TransportError:
                self.unreachable += 1
                turn[0] = (turn[0] + 1) % len(urls)
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if response.status_code == expected:
                return response.json()
            if response.status_code == 503 and _code(response) in UNAVAILABLE and "retry-after" in response.headers:
                self.unavailable += 1
                turn[0] = (turn[0] + 1) % len(urls)
                await asyncio.sleep(RETRY_PAUSE)
                continue
            self.unexpected.append(f"POST {path}: {response.status_code} {response.text[:300]}")
            return None
