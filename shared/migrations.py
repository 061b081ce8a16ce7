"""SQL migrations applied in order at start-up and recorded, under a lock so replicas can race."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

KERNEL_MIGRATIONS = Path(__file__).parent / "migrations"


def schema_namespace(schema: str) -> int:
    """The advisory-lock namespace of a schema: 22 bits of its hash, shifted above 2^40 positions."""
    digest = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:4], "big") & 0x3FFFFF
    return (digest + 1) << 40


async def apply_migrations(conn: asyncpg.Connection, schema: str, *folders: Path) -> list[str]:
    """Create `schema` and apply every `*.sql` of the kernel then of `folders`, once each."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(0, hashtext($1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for folder in (KERNEL_MIGRATIONS, *folders):
            for path in sorted(folder.glob("*.sql")):
                name = f"{folder.parent.name}/{path.name}"
                if name in done:
                    continue
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
    return applied
