"""JSON logs on stderr, each line carrying the current trace and span ids."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class _TraceIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else None
        record.span_id = f"{ctx.span_id:016x}" if ctx.is_valid else None
        return True


class _Repeats(logging.Filter):
    """A client library's record that repeats (the same logger and message template) passes once per `window`
    seconds, the next one saying how many were held back: while the brokers are away aiokafka logs every failed
    connection, some 200 lines a second a process, which cost the CPU the brokers need to come back."""

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka",), window: float = 10.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window = window
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # key -> (when it last passed, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        passed, held = self._seen.get(key, (-self.window, 0))
        if now - passed < self.window:
            self._seen[key] = (passed, held + 1)
            return False
        if held:
            record.repeated = held  # a field of its own in the JSON line
        self._seen[key] = (now, 0)
        if len(self._seen) > 1024:  # messages formatted before logging never repeat: keep only the recent
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Repeats())
    handler.addFilter(_TraceIds())
    fields: dict[str, Any] = {"service": service}
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields=fields,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print paths with ids; ours is enough
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
