"""Container health check: GET http://127.0.0.1:$PORT/healthz with urllib; exit 0 when it answers 200.

Without PORT the port is the default of the service PID 1 runs (`python -m services.<name>`).
"""

# ruff: noqa: INP001 - a script copied into the image, not a package
from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

DEFAULT_PORTS = {
    "membership": 8001,
    "transfer": 8002,
    "servicecard": 8003,
    "feedback": 8004,
    "dues": 8005,
    "console": 8010,
}


def port() -> int:
    if value := os.environ.get("PORT"):
        return int(value)
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    except OSError:
        argv = []
    for arg in argv:
        name = arg.removeprefix("services.")
        if arg.startswith("services.") and name in DEFAULT_PORTS:
            return DEFAULT_PORTS[name]
    return 8001


def main() -> int:
    url = f"http://127.0.0.1:{port()}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "3"))) as response:
            return 0 if response.status == 200 else 1
    except Exception as exc:  # any failure means unhealthy
        sys.stderr.write(f"unhealthy: {url}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
