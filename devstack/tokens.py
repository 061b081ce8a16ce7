"""The development token issuer: an ES256 key pair under `.run/auth/` and `make token`.

Services verify tokens with the public half (`.run/auth/jwks.json`, AUTH_JWKS); the private half never
leaves this folder. In production an identity provider issues the tokens and publishes its JWKS instead.

    make token ROLE=admin
    make token ROLE=staff ORG=<org_id>
    make token ROLE=member MEMBER=<member_id>
    make token ROLE=system NAME=<name> [SCOPE="members:read stats:read"]
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import jwt
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from devstack import procs

ISSUER = "union-platform"
AUDIENCE = "union-platform"
# what a system token may do when no scope is named: read-only integrations
DEFAULT_SYSTEM_SCOPE = "organizations:read members:read transfers:read cards:read stats:read"


class Issuer:
    def __init__(self, folder: Path, key: ec.EllipticCurvePrivateKey, kid: str) -> None:
        self.folder = folder
        self.key = key
        self.kid = kid

    @property
    def jwks_path(self) -> Path:
        return self.folder / "jwks.json"

    @classmethod
    def open(cls, folder: Path) -> Issuer:
        """The issuer kept in `folder`, made on first use."""
        folder.mkdir(parents=True, exist_ok=True)
        private = folder / "signing-key.pem"
        if not private.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            private.touch(mode=0o600)
            private.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            jwk.update(kid=secrets.token_hex(8), alg="ES256", use="sig")
            (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
        loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        kid = json.loads((folder / "jwks.json").read_text())["keys"][0]["kid"]
        return cls(folder, loaded, kid)

    def mint(
        self,
        role: str,
        *,
        org_id: UUID | str | None = None,
        member_id: UUID | str | None = None,
        name: str | None = None,
        scope: str | None = None,
        subject: str | None = None,
        ttl: timedelta = timedelta(hours=8),
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
    ) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject or name or f"{role}-{member_id or org_id or 'dev'}",
            "iat": now,
            "exp": now + ttl,
            "role": role,
        }
        if org_id is not None:
            claims["org_id"] = str(org_id)
        if member_id is not None:
            claims["member_id"] = str(member_id)
        if name is not None:
            claims["name"] = name
        if role == "system":
            claims["scope"] = DEFAULT_SYSTEM_SCOPE if scope is None else scope
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


def default_folder() -> Path:
    return procs.run_dir() / "auth"


def main(
    role: Annotated[str, typer.Option(help="admin, staff, member or system")],
    org: Annotated[str, typer.Option(help="staff: the organisation's id")] = "",
    member: Annotated[str, typer.Option(help="member: the member's id")] = "",
    name: Annotated[str, typer.Option(help="system: the integration's name; others: a display name")] = "",
    scope: Annotated[str | None, typer.Option(help="system: space-separated scopes")] = None,
    hours: Annotated[float, typer.Option(help="lifetime")] = 8,
) -> None:
    """Print a token signed by the development issuer (the key `make run` gives the services)."""
    if role not in {"admin", "staff", "member", "system"}:
        raise typer.BadParameter("ROLE is one of admin, staff, member, system", param_hint="ROLE")
    if role == "staff" and not org:
        raise typer.BadParameter("a staff token needs ORG=<org_id>", param_hint="ORG")
    if role == "member" and not member:
        raise typer.BadParameter("a member token needs MEMBER=<member_id>", param_hint="MEMBER")
    if role == "system" and not name:
        raise typer.BadParameter("a system token needs NAME=<name>", param_hint="NAME")
    for value, hint in ((org, "ORG"), (member, "MEMBER")):
        if value:
            try:
                UUID(value)
            except ValueError as exc:
                raise typer.BadParameter(f"{value!r} is not an id", param_hint=hint) from exc
    token = Issuer.open(default_folder()).mint(
        role,
        org_id=org or None,
        member_id=member or None,
        name=name or None,
        scope=scope,
        ttl=timedelta(hours=hours),
    )
    typer.echo(token)


if __name__ == "__main__":
    typer.run(main)
