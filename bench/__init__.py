"""`make bench`: one run, one table (also written to docs/benchmarks.md)."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.tokens import Issuer


def admin_headers() -> dict[str, str]:
    """An admin's token from the issuer `make bench` set up (AUTH_JWKS's folder)."""
    issuer = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent)
    return {"Authorization": f"Bearer {issuer.mint('admin', name='bench')}"}
