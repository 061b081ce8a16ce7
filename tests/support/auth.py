"""The test session's token issuer: services verify with its public key (AUTH_JWKS), tests mint tokens."""

from __future__ import annotations

import functools
import os
from typing import Any

from devstack import procs
from devstack.tokens import Issuer


@functools.cache
def issuer() -> Issuer:
    return Issuer.open(procs.run_dir() / "test" / f"auth-{os.getpid()}")


def token(role: str = "admin", **claims: Any) -> str:
    return issuer().mint(role, **claims)


def bearer(role: str = "admin", **claims: Any) -> dict[str, str]:
    """An Authorization header for `role` (staff: org_id=..., member: member_id=..., system: name/scope)."""
    return {"Authorization": f"Bearer {token(role, **claims)}"}
