"""The services as processes: started with their settings, watched, stopped. Used by `make run` and e2e tests.

With `replicas` above 1 each service runs that many processes on one database schema, the second on its port +
100, the third + 200: they share the consumer group (the partitions are shared out) and stand for the relay's
election (one relays); either answers any request."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"membership": 8001, "transfer": 8002, "servicecard": 8003, "feedback": 8004, "dues": 8005}
TOPICS = [
    "union.membership.v1",
    "union.membership.restricted.v1",  # the blind index, for transfer only (never regional systems)
    "union.transfer.v1",
    "union.servicecard.v1",
    "union.feedback.v1",
    "union.dues.v1",
    "union.regional.employment.v1",
]


CONSOLE_PORT = 8010  # the union office in the browser (services/console): no database, the services over HTTP


def available_services() -> dict[str, int]:
    """The services that exist in this checkout (each has a `__main__`)."""
    return {name: port for name, port in SERVICES.items() if (ROOT / "services" / name / "__main__.py").exists()}


def all_topic_names(prefix: str = "") -> list[str]:
    return [prefix + t for t in TOPICS] + [prefix + t + ".dlq" for t in TOPICS]


REPLICA_PORT_STEP = 100


@dataclass
class ServiceProcess:
    name: str  # the service's name, `-2`, `-3` added for its further replicas
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def service(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        """One quick look at /readyz."""
        try:
            return httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Platform:
    """Services started with one base environment plus each one's own database and port, and, with `service_env`,
    variables of its own (on Apache Kafka each service signs in as its own principal: KafkaCluster.service_env)."""

    base_env: dict[str, str]
    database_urls: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=available_services)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    replicas: int = 1
    service_env: Callable[[str], dict[str, str]] | None = None  # the service's name -> its own variables

    def start(self) -> Platform:
        for name, port in self.ports.items():
            for n in range(self.replicas):
                replica = name if n == 0 else f"{name}-{n + 1}"
                env = {
                    **os.environ,
                    **self.base_env,
                    **(self.service_env(name) if self.service_env is not None else {}),
                    "PORT": str(port + n * REPLICA_PORT_STEP),
                    "DATABASE_URL": self.database_urls[name],
                    "DB_SCHEMA": self.base_env.get("DB_SCHEMA_PREFIX", "") + name,
                    "OTEL_SERVICE_NAME": name,
                    "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={replica}",
                    "PYTHONPATH": str(ROOT),
                }
                process = ServiceProcess(replica, port + n * REPLICA_PORT_STEP, env, self.log_dir / f"{replica}.log")
                self.processes[replica] = process
                process.start()
        try:
            for process in self.processes.values():
                process.wait_ready()
        except RuntimeError:
            # one of them exited: stop the others, or they outlive whoever started them. (Not ready in time is left
            # to the caller: a process catching up is ready only once it has caught up.)
            self.stop()
            raise
        return self

    def url(self, name: str) -> str:
        return self.processes[name].url

    @property
    def services(self) -> list[str]:
        """The services' names, once each whatever their replicas (`url(name)` is the first replica's)."""
        return list(dict.fromkeys(process.service for process in self.processes.values()))

    def replicas_of(self, name: str) -> list[ServiceProcess]:
        return [p for p in self.processes.values() if p.service == name]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.process.terminate()
        for process in self.processes.values():
            process.stop()


def console_process(platform: Platform, port: int, log_dir: Path, dev_issuer: Path | None) -> ServiceProcess:
    """The console, pointed at the platform's services; with `dev_issuer` its sign-in page signs tokens for a role."""
    env = {
        **os.environ,
        "PORT": str(port),
        "OTEL_SERVICE_NAME": "console",
        "PYTHONPATH": str(ROOT),
        **{f"{name.upper()}_URL": platform.url(name) for name in ("membership", "transfer", "servicecard", "feedback")},
    }
    if dev_issuer is not None:
        env["CONSOLE_DEV_ISSUER"] = str(dev_issuer)
    return ServiceProcess("console", port, env, log_dir / "console.log")
