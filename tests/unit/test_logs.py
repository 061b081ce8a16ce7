"""The log's flood guard: a client library's repeated record passes once per window, then says how many it held."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared import logs


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.setup_logging("test")
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_client_librarys_repeated_record_passes_once_per_window(
    lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])
    client = logging.getLogger("aiokafka")
    for node in range(200):  # the same template, any arguments: one kind of record
        client.error("Unable connect to node with id %s: %s", node % 3, "Connection refused")
    client.error("Unable to update metadata from %s", [1, 2, 3])  # another template passes at once
    logging.getLogger("shared.outbox").warning("relay: publishing failed, will retry")
    logging.getLogger("shared.outbox").warning("relay: publishing failed, will retry")  # ours are never held
    now[0] += 10.5
    client.error("Unable connect to node with id %s: %s", 1, "Connection refused")
    seen = records(lines)
    assert [r["message"] for r in seen] == [
        "Unable connect to node with id 0: Connection refused",
        "Unable to update metadata from [1, 2, 3]",
        "relay: publishing failed, will retry",
        "relay: publishing failed, will retry",
        "Unable connect to node with id 1: Connection refused",
    ]
    assert seen[-1]["repeated"] == 199
    assert "repeated" not in seen[0]
