"""`make run` keeps what it started running: a process that dies is reaped, reported and started again.

Reaping matters as much as restarting: an unreaped PostgreSQL is a zombie whose pid still answers, so its
`postmaster.pid` keeps a new server from starting on the same data directory.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def how_it_ended(returncode: int) -> str:
    """`exit code 1`, or the signal's name for a process a signal ended (Popen's negative return codes)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Supervised:
    """One process: how to find it, start it again, and tell that it serves again."""

    name: str
    process: Callable[[], subprocess.Popen[bytes] | None]
    restart: Callable[[], str | None]  # starts it again (may block until it serves); an optional note
    ready: Callable[[], bool] = lambda: True  # polled after a restart until it is true
    url: str = ""
    restarts: int = 0
    died_at: float | None = None  # monotonic time it was found dead; None while it serves
    waiting: bool = False  # restarted, not serving yet


@dataclass
class Supervisor:
    watched: list[Supervised] = field(default_factory=list)
    report: Callable[[str], None] = lambda line: print(line, flush=True)
    status_file: Path | None = None  # what runs, by name: pid, url, restarts (JSON)

    def watch(self, supervised: Supervised) -> None:
        self.watched.append(supervised)

    def check(self) -> None:
        """One look at everything: restart what died, report what serves again."""
        changed = False
        for item in self.watched:
            if item.waiting:
                if item.ready():
                    item.waiting = False
                    self.report(f"{item.name} serves again, {self._since(item)} after it died")
                    item.died_at = None
                continue
            process = item.process()
            if process is not None and process.poll() is None:  # poll() reaps it once it has died
                continue
            if item.died_at is None:
                item.died_at = time.monotonic()
                ended = how_it_ended(process.returncode) if process is not None else "not running"
                self.report(f"{item.name} (pid {process.pid if process else '?'}) died: {ended}")
            changed = True
            self._restart(item)
        if changed:
            self.write_status()

    def _restart(self, item: Supervised) -> None:
        try:
            note = item.restart()
        except Exception as exc:  # tried again at the next look; the reason is on the console
            self.report(f"{item.name}: restart failed ({exc}); trying again")
            return
        item.restarts += 1
        process = item.process()
        pid = process.pid if process is not None else "?"
        self.report(f"{item.name} restarted (pid {pid}) in {self._since(item)}{f'; {note}' if note else ''}")
        item.waiting = True
        if item.ready():
            item.waiting = False
            item.died_at = None

    @staticmethod
    def _since(item: Supervised) -> str:
        return f"{time.monotonic() - (item.died_at or time.monotonic()):.1f} s"

    def write_status(self) -> None:
        if self.status_file is None:
            return
        status = {}
        for item in self.watched:
            process = item.process()
            status[item.name] = {
                "pid": process.pid if process is not None else None,
                "url": item.url,
                "restarts": item.restarts,
            }
        temporary = self.status_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(status, indent=2) + "\n")
        temporary.replace(self.status_file)
