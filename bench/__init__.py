"""`make bench`: one run, one table (also written to docs/benchmarks.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from devstack.tokens import Issuer


def admin_headers() -> dict[str, str]:
    """An admin's token from the issuer `make bench` set up (AUTH_JWKS's folder)."""
    issuer = Issuer.open(Path(os.environ["AUTH_JWKS"]).parent)
    return {"Authorization": f"Bearer {issuer.mint('admin', name='bench')}"}


def http_client(url: str, clients: int = 1, **options: Any) -> httpx.AsyncClient:
    """A client of `clients` connections that never reuses one the server may be closing (uvicorn closes an idle
    connection after 5 s; a request sent on it as it closes fails with ReadError)."""
    limits = httpx.Limits(max_connections=clients, keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=url, timeout=options.pop("timeout", 30), limits=limits, **options)
