"""Personal data: a data key per person (AES-GCM), wrapped by the master key; a keyed hash for look-ups.

Erasure deletes the person's key (crypto-shredding): their ciphertexts stay in the event history and
can never be read again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "enc:v1:"


class PersonalDataVault:
    def __init__(self, master_key: bytes, blind_index_key: bytes) -> None:
        if len(master_key) != 32 or len(blind_index_key) < 16:
            raise ValueError("the master key must be 32 bytes and the blind-index key at least 16")
        self._master = AESGCM(master_key)
        self._blind = blind_index_key

    @classmethod
    def from_settings(cls, master_key_b64: str, blind_key_b64: str) -> PersonalDataVault:
        return cls(base64.b64decode(master_key_b64), base64.b64decode(blind_key_b64))

    def blind_index(self, value: str) -> str:
        return hmac.new(self._blind, value.strip().upper().encode(), hashlib.sha256).hexdigest()

    async def _key(self, conn: asyncpg.Connection, subject: UUID, *, create: bool) -> AESGCM | None:
        wrapped = await conn.fetchval("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1", subject)
        if wrapped is None:
            if not create:
                return None
            if await conn.fetchval("SELECT 1 FROM erasures WHERE subject_id = $1", subject):
                raise PermissionError(f"personal data of {subject} was erased")
            wrapped = self._wrap(subject, AESGCM.generate_key(bit_length=256))
            await conn.execute(
                "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                subject,
                wrapped,
            )
            wrapped = await conn.fetchval("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1", subject)
        return self._unwrap(subject, bytes(wrapped))

    def _unwrap(self, subject: UUID, blob: bytes) -> AESGCM:
        return AESGCM(self._master.decrypt(blob[:12], blob[12:], subject.bytes))

    async def keys(self, conn: asyncpg.Connection, subjects: Iterable[UUID]) -> dict[UUID, AESGCM]:
        """The keys of these people in one query, for a page that shows many (a roster, a queue); an erased person's
        is absent. `open` then decrypts each one's values."""
        rows = await conn.fetch(
            "SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id = ANY($1::uuid[])", list(set(subjects))
        )
        return {r["subject_id"]: self._unwrap(r["subject_id"], bytes(r["wrapped_key"])) for r in rows}

    def _wrap(self, subject: UUID, raw: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._master.encrypt(nonce, raw, subject.bytes)

    @staticmethod
    def _seal(key: AESGCM, subject: UUID, values: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, value in values.items():
            nonce = os.urandom(12)
            sealed = nonce + key.encrypt(nonce, value.encode(), subject.bytes + name.encode())
            out[name] = _PREFIX + base64.b64encode(sealed).decode()
        return out

    async def encrypt(self, conn: asyncpg.Connection, subject: UUID, values: dict[str, str]) -> dict[str, str]:
        key = await self._key(conn, subject, create=True)
        assert key is not None
        return self._seal(key, subject, values)

    async def encrypt_new(
        self, conn: asyncpg.Connection, values: dict[UUID, dict[str, str]]
    ) -> dict[UUID, dict[str, str]]:
        """Make a key for each new subject in one statement and seal their values (bulk imports)."""
        raw = {subject: AESGCM.generate_key(bit_length=256) for subject in values}
        await conn.execute(
            "INSERT INTO subject_keys (subject_id, wrapped_key) SELECT * FROM unnest($1::uuid[], $2::bytea[])",
            list(raw),
            [self._wrap(subject, key) for subject, key in raw.items()],
        )
        return {subject: self._seal(AESGCM(raw[subject]), subject, v) for subject, v in values.items()}

    async def decrypt(self, conn: asyncpg.Connection, subject: UUID, values: dict[str, str]) -> dict[str, str | None]:
        """Clear values, or None for each once the person's key is destroyed."""
        return self.open(await self._key(conn, subject, create=False), subject, values)

    @staticmethod
    def open(key: AESGCM | None, subject: UUID, values: dict[str, str]) -> dict[str, str | None]:
        """Clear values with the person's key (`keys`), or None for each where there is none (erased)."""
        out: dict[str, str | None] = {}
        for name, value in values.items():
            if key is None or not value.startswith(_PREFIX):
                out[name] = None
                continue
            sealed = base64.b64decode(value[len(_PREFIX) :])
            out[name] = key.decrypt(sealed[:12], sealed[12:], subject.bytes + name.encode()).decode()
        return out

    async def erase(self, conn: asyncpg.Connection, subject: UUID) -> bool:
        await conn.execute("INSERT INTO erasures (subject_id) VALUES ($1) ON CONFLICT DO NOTHING", subject)
        status: str = await conn.execute("DELETE FROM subject_keys WHERE subject_id = $1", subject)
        return status != "DELETE 0"
