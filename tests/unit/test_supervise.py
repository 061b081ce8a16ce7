"""`make run`'s supervisor: a process that dies is reaped, reported with how it ended, and started again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from devstack.supervise import Supervised, Supervisor, how_it_ended


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_how_it_ended() -> None:
    assert how_it_ended(-signal.SIGKILL) == "killed by SIGKILL"
    assert how_it_ended(3) == "exit code 3"


def test_a_process_that_died_is_reaped_reported_and_restarted(tmp_path: Path) -> None:
    running = [sleeper()]
    ready = [False]
    lines: list[str] = []

    def restart() -> str:
        running.append(sleeper())
        return "started again"

    supervisor = Supervisor(report=lines.append, status_file=tmp_path / "processes.json")
    supervisor.watch(Supervised("worker", lambda: running[-1], restart, lambda: ready[0], url="http://worker"))
    try:
        supervisor.check()
        assert lines == []  # alive: nothing to do

        first = running[0]
        first.send_signal(signal.SIGKILL)
        first.wait()
        supervisor.check()
        assert lines[0] == f"worker (pid {first.pid}) died: killed by SIGKILL"
        assert lines[1].startswith(f"worker restarted (pid {running[1].pid}) in ")
        assert lines[1].endswith("; started again")
        status = json.loads((tmp_path / "processes.json").read_text())
        assert status["worker"] == {"pid": running[1].pid, "url": "http://worker", "restarts": 1}

        supervisor.check()
        assert len(lines) == 2  # restarted, not serving yet
        ready[0] = True
        supervisor.check()
        assert lines[2].startswith("worker serves again, ")
        assert len(running) == 2
    finally:
        for process in running:
            process.kill()
            process.wait()


def test_a_restart_that_fails_is_tried_again() -> None:
    lines: list[str] = []
    attempts: list[int] = []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    started: list[subprocess.Popen[bytes]] = []

    def restart() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("port still taken")
        started.append(sleeper())

    supervisor = Supervisor(report=lines.append)
    supervisor.watch(Supervised("db", lambda: started[-1] if started else dead, restart))
    try:
        supervisor.check()
        supervisor.check()
        assert lines[0] == f"db (pid {dead.pid}) died: exit code 0"
        assert lines[1] == "db: restart failed (port still taken); trying again"
        assert lines[2].startswith("db restarted")
        assert len(attempts) == 2
    finally:
        for process in started:
            process.kill()
            process.wait()
