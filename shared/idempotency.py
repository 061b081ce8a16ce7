"""Idempotent commands: an `Idempotency-Key` returns the first outcome on a retry."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from shared.database import TRANSACTION_CONFLICT
from shared.errors import DomainError

Outcome = tuple[int, Any]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def run_once(
    pool: asyncpg.Pool,
    scope: str,
    key: str | None,
    fingerprint: str,
    command: Callable[[asyncpg.Connection], Awaitable[Outcome]],
) -> Outcome:
    """Run `command` in a transaction; with a key, at most once per (scope, key), remembering its outcome. A
    transaction PostgreSQL broke off to resolve a deadlock or a serialization conflict committed nothing: it is run
    again, a few times, rather than answered with a 500."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                if key is None:
                    return await command(conn)
                # requests with the same key queue here, so the second sees the first's outcome
                await conn.execute("SELECT pg_advisory_xact_lock(3, hashtext($1))", f"{scope}\n{key}")
                row = await conn.fetchrow(
                    "SELECT request_hash, status_code, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
                    scope,
                    key,
                )
                if row is not None:
                    if row["request_hash"] != fingerprint:
                        raise DomainError(
                            "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request",
                            status_code=422,
                        )
                    return int(row["status_code"]), json.loads(row["body"])
                status, body = await command(conn)
                await conn.execute(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    scope,
                    key,
                    fingerprint,
                    status,
                    json.dumps(body, default=str),
                )
                return status, body
        except TRANSACTION_CONFLICT:
            if attempt == _ATTEMPTS:
                raise
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


_ATTEMPTS = 3
