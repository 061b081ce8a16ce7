"""`make run` started while the last one's PostgreSQL is still shutting down waits for it, and names a server that
does not go away instead of failing with "process exited before listening"."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres


def a_postmaster(data_dir: Path, seconds: float) -> subprocess.Popen[bytes]:
    """A process named postgres that holds the data directory's postmaster.pid for `seconds`."""
    process = subprocess.Popen(["bash", "-c", f"exec -a postgres sleep {seconds}"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "postmaster.pid").write_text(f"{process.pid}\n{data_dir}\n")
    time.sleep(0.1)  # the exec has happened
    return process


def test_a_server_shutting_down_is_waited_for(tmp_path: Path) -> None:
    server = a_postmaster(tmp_path / "pg", 1.5)
    pg = EmbeddedPostgres(tmp_path / "pg", 1)
    assert pg.previous_server() == server.pid
    started = time.monotonic()
    pg.wait_for_previous(timeout=10)
    assert time.monotonic() - started >= 1.0  # it waited, rather than starting beside it
    assert server.wait(timeout=1) == 0  # and returned once that server had exited
    assert pg.previous_server() is None


def test_a_server_that_stays_is_named(tmp_path: Path) -> None:
    server = a_postmaster(tmp_path / "pg", 30)
    try:
        with pytest.raises(RuntimeError, match=f"pid {server.pid}.*kill -TERM {server.pid}"):
            EmbeddedPostgres(tmp_path / "pg", 1).wait_for_previous(timeout=0.5)
    finally:
        server.kill()
        server.wait()


def test_a_stale_pid_file_is_no_server(tmp_path: Path) -> None:
    done = subprocess.Popen(["true"])
    done.wait()
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "postmaster.pid").write_text(f"{done.pid}\n")
    assert EmbeddedPostgres(tmp_path / "pg", 1).previous_server() is None
