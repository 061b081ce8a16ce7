"""Run one service under uvicorn, with JSON logs, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import os

import uvicorn

from shared.logs import setup_logging


def serve(factory: str, service: str, default_port: int) -> None:
    setup_logging(service, os.environ.get("LOG_LEVEL", "INFO"))
    # X-Forwarded-For is believed only from the proxies named here (none by default): the client address is
    # what rate limits count by, so a header any client can write must not choose it
    trusted_proxies = os.environ.get("FORWARDED_ALLOW_IPS", "")
    uvicorn.run(
        factory,
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", default_port)),
        log_config=None,
        access_log=False,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies or None,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
