"""Signing tokens with the development issuer's key, exactly as `make token` does (devstack.tokens).

Only the console of a development stack is given the key (CONSOLE_DEV_ISSUER); the services verify with its
public half as they would any identity provider's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "union-platform"
AUDIENCE = "union-platform"


class DevIssuer:
    def __init__(self, folder: Path) -> None:
        loaded = serialization.load_pem_private_key((folder / "signing-key.pem").read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError("the development issuer's key is an EC P-256 key")
        self.key = loaded
        self.kid: str = json.loads((folder / "jwks.json").read_text())["keys"][0]["kid"]

    def mint(
        self, role: str, *, org_id: str | None = None, member_id: str | None = None, name: str | None = None
    ) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"console-{role}-{member_id or org_id or 'dev'}",
            "iat": now,
            "exp": now + timedelta(hours=8),
            "role": role,
        }
        if org_id:
            claims["org_id"] = org_id
        if member_id:
            claims["member_id"] = member_id
        if name:
            claims["name"] = name
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})
