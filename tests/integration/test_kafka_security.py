"""Kafka security in deploy/: SASL/SCRAM principals, ACLs from deploy/kafka/acls.txt, and the clients' settings.

No broker with SASL runs here (the local test broker has none): the Compose file is checked with the real Compose
binary, the one-shot scripts run against stand-ins for Kafka's tools that record their arguments, and the grants
are checked against what each service really consumes (its consumers.py).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import ssl
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from devstack.platform import SERVICES, all_topic_names
from shared.events import channel_topic
from shared.messaging import PartitionProgress, make_consumer, make_producer
from shared.settings import KernelSettings
from tests.integration.test_deploy import REQUIRED, run_compose
from unionctl import cli

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = ROOT / "deploy" / "kafka"
ACLS_FILE = KAFKA_DIR / "acls.txt"
APP_SERVICES = list(SERVICES)  # membership, transfer, servicecard, feedback, dues
REGIONAL_TOPIC = "union.regional.employment.v1"
PUBLIC_TOPICS = {f"union.{name}.v1" for name in APP_SERVICES}  # none carries personal data
RESTRICTED_TOPIC = "union.membership.restricted.v1"  # members' blind indexes: transfer's only


def own_topics(service: str) -> set[str]:
    """The topics a service's events go to (its outbox relay writes them): one per channel of its event classes."""
    events = importlib.import_module(f"services.{service}.events")
    topic = f"union.{service}.v1"
    return {channel_topic(topic, cls.channel) for cls in events.registry.classes() if cls.published}


KAFKA_PASSWORDS = sorted(k for k in REQUIRED if k.startswith("KAFKA_") and k.endswith("_PASSWORD"))


@dataclass(frozen=True)
class Grant:
    principal: str
    operation: str
    resource: str  # topic | group
    name: str
    pattern: str = "literal"


def parse_acls(text: str) -> list[Grant]:
    grants = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        assert len(words) in {4, 5}, line
        grants.append(Grant(*words))
    return grants


@pytest.fixture(scope="module")
def grants() -> list[Grant]:
    return parse_acls(ACLS_FILE.read_text())


def granted(grants: list[Grant], principal: str, operation: str, resource: str = "topic") -> set[str]:
    return {g.name for g in grants if (g.principal, g.operation, g.resource) == (principal, operation, resource)}


def consumed_topics(service: str) -> set[str]:
    """The topics a service consumes, from its own consumers.handlers(...) (unprefixed names)."""
    consumers = importlib.import_module(f"services.{service}.consumers")
    dependencies = [None] * len(inspect.signature(consumers.handlers).parameters)  # closures only: never called
    return set(consumers.handlers(*dependencies))


# --- compose ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_refuses_to_start_without_each_kafka_password() -> None:
    principals = ["admin", *APP_SERVICES, "regional"]
    expected = sorted(f"KAFKA_{p.upper()}_PASSWORD" for p in principals)
    assert expected == KAFKA_PASSWORDS, "test_deploy.REQUIRED should hold every Kafka principal's password"
    for missing in KAFKA_PASSWORDS:
        env = {k: v for k, v in REQUIRED.items() if k != missing}
        result = run_compose("config", "-q", env=env)
        assert result.returncode != 0, f"{missing} should be required"
        assert missing in result.stderr
        empty = run_compose("config", "-q", env={**REQUIRED, missing: ""})
        assert empty.returncode != 0, f"an empty {missing} should be refused"


def test_kafka_asks_every_listener_for_sasl_and_denies_what_is_not_granted(config: dict[str, Any]) -> None:
    kafka = config["services"]["kafka"]
    env = kafka["environment"]
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {entry.split("://")[0] for entry in env["KAFKA_LISTENERS"].split(",")}
    assert set(protocols) == listeners == {"INTERNAL", "EXTERNAL", "CONTROLLER"}
    assert all(p.startswith("SASL_") for p in protocols.values()), protocols
    advertised = {entry.split("://")[0] for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert advertised == {"INTERNAL", "EXTERNAL"}  # the controller listener stays internal
    assert [p["target"] for p in kafka["ports"]] == [9094]
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"  # clients: SCRAM only, never PLAIN
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert env["KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL"] == "PLAIN"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    admin = REQUIRED["KAFKA_ADMIN_PASSWORD"]
    internal = env["KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    assert "ScramLoginModule required" in internal
    assert f'username="admin" password="{admin}";' in internal
    assert "ScramLoginModule required" in env["KAFKA_LISTENER_NAME_EXTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    controller = env["KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG"]
    assert f'username="admin" password="{admin}" user_admin="{admin}";' in controller
    # the admin's credential is made at format time by the entrypoint, which reads a non-KAFKA_ variable
    assert kafka["entrypoint"] == ["/bin/sh", "/deploy/kafka/start-broker.sh"]
    assert env["SCRAM_ADMIN_PASSWORD"] == admin
    mounts = {v["target"]: Path(v["source"]) for v in kafka["volumes"] if v["type"] == "bind"}
    assert mounts["/deploy/kafka/start-broker.sh"] == KAFKA_DIR / "start-broker.sh"
    assert "--command-config /opt/kafka/config/admin-client.properties" in kafka["healthcheck"]["test"][1]


def test_the_one_shot_step_sets_credentials_topics_and_acls_as_admin(config: dict[str, Any]) -> None:
    topics = config["services"]["topics"]
    assert topics["entrypoint"] == ["/bin/sh", "/deploy/kafka/setup.sh"]
    env = topics["environment"]
    assert env["ACLS_FILE"] == "/deploy/kafka/acls.txt"
    for variable in KAFKA_PASSWORDS:
        assert env[variable] == REQUIRED[variable], variable
    mounts = {v["target"]: Path(v["source"]) for v in topics["volumes"]}
    assert mounts["/deploy/kafka"] == KAFKA_DIR


def test_each_service_signs_in_as_itself(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = config["services"][name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["KAFKA_SASL_USERNAME"] == name
        assert env["KAFKA_SASL_PASSWORD"] == REQUIRED[f"KAFKA_{name.upper()}_PASSWORD"]
        # and those settings make a valid client configuration
        settings = KernelSettings(**{k.lower(): v for k, v in env.items() if k.startswith("KAFKA_")})
        assert settings.kafka_security()["sasl_plain_username"] == name


# --- the grants ------------------------------------------------------------------------------------


def test_the_grants_name_only_known_principals_topics_and_operations(grants: list[Grant]) -> None:
    assert {g.principal for g in grants} == {*APP_SERVICES, "regional"}  # admin is the super user: no lines
    topics = set(all_topic_names())
    for g in grants:
        assert g.operation in {"Read", "Write", "Describe"}, g  # nobody creates, deletes or alters: the step does
        assert g.resource in {"topic", "group"}, g
        if g.resource == "topic":
            assert g.name in topics, g
            assert g.pattern == "literal", g
    assert len(grants) == len(set(grants)), "a grant is listed twice"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_a_service_writes_its_own_topic_and_the_dead_letters_of_what_it_consumes(
    grants: list[Grant], service: str
) -> None:
    consumed = consumed_topics(service)
    assert consumed, f"{service} consumes nothing?"
    writes = granted(grants, service, "Write")
    reads = granted(grants, service, "Read")
    assert writes == own_topics(service) | {f"{t}.dlq" for t in consumed}
    assert reads == consumed, f"acls.txt must grant {service} Read on exactly what consumers.py consumes"
    assert granted(grants, service, "Describe") == writes | reads
    assert granted(grants, service, "Read", "group") == {service}  # shared.runtime: group id = service name
    assert not granted(grants, service, "Describe", "group")
    assert all(g.pattern == "literal" for g in grants if g.principal == service)


def test_only_the_regional_systems_write_the_regional_topic(grants: list[Grant]) -> None:
    writers = {g.principal for g in grants if g.operation == "Write" and g.name == REGIONAL_TOPIC}
    assert writers == {"regional"}


def test_the_regional_systems_read_the_public_topics_and_write_only_theirs(grants: list[Grant]) -> None:
    assert granted(grants, "regional", "Write") == {REGIONAL_TOPIC}
    assert granted(grants, "regional", "Read") == PUBLIC_TOPICS
    assert granted(grants, "regional", "Describe") == PUBLIC_TOPICS | {REGIONAL_TOPIC}
    groups = {(g.operation, g.name, g.pattern) for g in grants if g.principal == "regional" and g.resource == "group"}
    assert groups == {("Read", "regional", "prefixed")}
    assert not any(g.name.endswith(".dlq") for g in grants if g.principal == "regional")


def test_every_topic_is_written_by_its_owner_only(grants: list[Grant]) -> None:
    for name in APP_SERVICES:
        for topic in own_topics(name):
            writers = {g.principal for g in grants if g.operation == "Write" and g.name == topic}
            assert writers == {name}, topic


def test_only_transfer_reads_the_restricted_topic(grants: list[Grant]) -> None:
    assert own_topics("membership") == {"union.membership.v1", RESTRICTED_TOPIC}
    readers = {g.principal for g in grants if g.operation in {"Read", "Describe"} and g.name == RESTRICTED_TOPIC}
    assert readers == {"membership", "transfer"}  # membership only Describes it (its relay writes it)
    assert granted(grants, "transfer", "Read") >= {RESTRICTED_TOPIC}
    assert not any(g.name.startswith(RESTRICTED_TOPIC) for g in grants if g.principal == "regional")


# --- the scripts -----------------------------------------------------------------------------------


def recorder(path: Path, calls: Path) -> Path:
    """A stand-in for one of Kafka's tools: appends its arguments, one call a line."""
    path.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    path.chmod(0o755)
    return path


def run_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = KAFKA_DIR / name
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["sh", str(script)], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_apply_acls_grants_every_line_of_the_file(tmp_path: Path, grants: list[Grant]) -> None:
    calls = tmp_path / "calls"
    client = tmp_path / "admin.properties"
    client.write_text("security.protocol=SASL_PLAINTEXT\n")
    env = {
        "KAFKA_ACLS": str(recorder(tmp_path / "kafka-acls.sh", calls)),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "KAFKA_COMMAND_CONFIG": str(client),
        "TOPIC_PREFIX": "p.",
    }
    result = run_script("apply-acls.sh", env)
    assert result.returncode == 0, result.stderr
    applied = set()
    lines = calls.read_text().splitlines()
    for line in lines:
        args = line.split()
        assert args[:5] == ["--bootstrap-server", "kafka:9092", "--command-config", str(client), "--add"]
        principal = option(args, "--allow-principal").removeprefix("User:")
        (resource,) = {"topic", "group"} & {a.removeprefix("--") for a in args}
        name = option(args, f"--{resource}")
        assert name.startswith("p."), line  # topics and groups alike carry the prefix
        pattern = option(args, "--resource-pattern-type")
        operations = [args[i + 1] for i, a in enumerate(args) if a == "--operation"]
        applied |= {Grant(principal, op, resource, name.removeprefix("p."), pattern) for op in operations}
    assert applied == set(grants)
    assert len(lines) < len(grants)  # one call per principal and resource, not per line
    assert f"{len(grants)} grants in {len(lines)} calls" in result.stdout


def test_apply_acls_refuses_a_malformed_file(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake = str(recorder(tmp_path / "kafka-acls.sh", calls))
    for bad in [
        "membership Write topic",  # no name
        "membership Writ topic union.membership.v1",  # no such operation
        "membership Write cluster kafka-cluster",  # not a topic or group
        "membership Write topic union.membership.v1 wildcard",
        "Membership; Write topic union.membership.v1",
    ]:
        acls = tmp_path / "acls.txt"
        acls.write_text(f"# ok\nfeedback Read group feedback\n{bad}\n")
        result = run_script("apply-acls.sh", {"KAFKA_ACLS": fake, "ACLS_FILE": str(acls)})
        assert result.returncode != 0, bad
        assert "acls.txt:3" in result.stderr, bad
    missing = run_script("apply-acls.sh", {"KAFKA_ACLS": fake, "KAFKA_COMMAND_CONFIG": str(tmp_path / "none")})
    assert missing.returncode != 0


def test_scram_users_sets_each_principal_from_its_variable(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    client = tmp_path / "admin.properties"
    client.write_text("security.protocol=SASL_PLAINTEXT\n")
    passwords = {k: v for k, v in REQUIRED.items() if k in KAFKA_PASSWORDS}
    env = {
        "KAFKA_CONFIGS": str(recorder(tmp_path / "kafka-configs.sh", calls)),
        "KAFKA_COMMAND_CONFIG": str(client),
        **passwords,
    }
    result = run_script("scram-users.sh", env)
    assert result.returncode == 0, result.stderr
    seen = {}
    for line in calls.read_text().splitlines():
        args = line.split()
        assert args[:4] == ["--bootstrap-server", "kafka:9092", "--command-config", str(client)]
        assert "--alter" in args
        assert option(args, "--entity-type") == "users"
        seen[option(args, "--entity-name")] = option(args, "--add-config")
    assert set(seen) == {*APP_SERVICES, "regional"}  # admin's is made at format time
    for principal, credential in seen.items():
        password = REQUIRED[f"KAFKA_{principal.upper()}_PASSWORD"]
        assert credential == f"SCRAM-SHA-512=[iterations=8192,password={password}]"

    calls.unlink()
    for missing in ["KAFKA_REGIONAL_PASSWORD", "KAFKA_MEMBERSHIP_PASSWORD"]:
        result = run_script("scram-users.sh", {**env, missing: ""})
        assert result.returncode != 0
        assert missing in result.stderr
        assert not calls.exists(), "nothing is changed while a password is missing"
    bad = run_script("scram-users.sh", {**env, "KAFKA_FEEDBACK_PASSWORD": "a,b"})
    assert bad.returncode != 0
    assert not calls.exists()


def test_setup_runs_the_three_steps_signed_in_as_admin(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    seen_config = tmp_path / "seen-config"
    # each stand-in also keeps a copy of the client properties it was handed
    tools = {}
    for variable, tool in [
        ("KAFKA_CONFIGS", "kafka-configs"),
        ("KAFKA_TOPICS", "kafka-topics"),
        ("KAFKA_ACLS", "kafka-acls"),
    ]:
        path = tmp_path / f"{tool}.sh"
        path.write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $*" >> "{calls}"\n'
            'while [ $# -gt 0 ]; do [ "$1" = --command-config ] && cat "$2" > "' + str(seen_config) + '"; shift; done\n'
        )
        path.chmod(0o755)
        tools[variable] = str(path)
    passwords = {k: v for k, v in REQUIRED.items() if k in KAFKA_PASSWORDS}
    result = run_script("setup.sh", {**tools, **passwords, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    order = [line.split()[0] for line in lines]
    assert order == sorted(order, key=["kafka-configs", "kafka-topics", "kafka-acls"].index)  # users, topics, acls
    assert order.count("kafka-configs") == len(APP_SERVICES) + 1  # each service and regional (admin: at format time)
    assert order.count("kafka-topics") == len(all_topic_names())
    configs = {option(line.split(), "--command-config") for line in lines}
    (config,) = configs
    assert not Path(config).exists(), "the admin's client properties are removed when the step ends"
    properties = seen_config.read_text()
    assert "security.protocol=SASL_PLAINTEXT" in properties
    assert "sasl.mechanism=SCRAM-SHA-512" in properties
    assert f'username="admin" password="{REQUIRED["KAFKA_ADMIN_PASSWORD"]}";' in properties
    assert REQUIRED["KAFKA_ADMIN_PASSWORD"] not in result.stdout + result.stderr

    without = run_script("setup.sh", {**tools, **passwords, "KAFKA_ADMIN_PASSWORD": ""})
    assert without.returncode != 0
    assert "KAFKA_ADMIN_PASSWORD" in without.stderr


@pytest.fixture
def broker_dir(tmp_path: Path) -> dict[str, Path]:
    paths = {"data": tmp_path / "data", "calls": tmp_path / "calls", "client": tmp_path / "admin-client.properties"}
    paths["data"].mkdir()
    paths["format_config"] = tmp_path / "format.properties"
    storage = tmp_path / "kafka-storage.sh"  # records, keeps the config it was given, marks the storage formatted
    storage.write_text(
        "#!/bin/sh\n"
        f'echo "kafka-storage $*" >> "{paths["calls"]}"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --config ] && cp "$2" "' + str(paths["format_config"]) + '"; shift; done\n'
        f'touch "{paths["data"]}/meta.properties"\n'
    )
    storage.chmod(0o755)
    run = tmp_path / "run"
    run.write_text(f'#!/bin/sh\necho "run" >> "{paths["calls"]}"\n')
    run.chmod(0o755)
    paths["storage"], paths["run"] = storage, run
    return paths


def test_the_broker_is_formatted_once_with_the_admins_scram_credential(
    config: dict[str, Any], broker_dir: dict[str, Path], tmp_path: Path
) -> None:
    # the kafka container's own environment, as Compose resolves it
    env = {k: str(v) for k, v in config["services"]["kafka"]["environment"].items()}
    env |= {
        "KAFKA_LOG_DIRS": str(broker_dir["data"]),
        "ADMIN_CLIENT_CONFIG": str(broker_dir["client"]),
        "STORAGE_TOOL": str(broker_dir["storage"]),
        "IMAGE_RUN": str(broker_dir["run"]),
        "TMPDIR": str(tmp_path),
    }
    admin = REQUIRED["KAFKA_ADMIN_PASSWORD"]
    first = run_script("start-broker.sh", env)
    assert first.returncode == 0, first.stderr
    (format_call, run_call) = broker_dir["calls"].read_text().splitlines()
    args = format_call.split()
    assert args[:2] == ["kafka-storage", "format"]
    assert option(args, "--cluster-id") == env["CLUSTER_ID"]
    assert option(args, "--add-scram") == f"SCRAM-SHA-512=[name=admin,password={admin}]"
    assert run_call == "run"
    assert not Path(option(args, "--config")).exists(), "the format's configuration (it holds the password) is gone"
    # the format saw the broker's real configuration, derived from KAFKA_* the way the image derives it
    properties = dict(
        line.split("=", 1) for line in broker_dir["format_config"].read_text().splitlines() if "=" in line
    )
    assert properties["process.roles"] == "broker,controller"
    assert properties["node.id"] == "1"
    assert properties["controller.quorum.voters"] == "1@kafka:9093"
    assert properties["log.dirs"] == str(broker_dir["data"])
    assert properties["super.users"] == "User:admin"
    assert properties["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert f'password="{admin}";' in properties["listener.name.internal.scram-sha-512.sasl.jaas.config"]
    assert "listener.name.controller.plain.sasl.jaas.config" in properties
    assert not any(key.startswith("scram") for key in properties)  # SCRAM_ADMIN_PASSWORD is no broker property
    client = broker_dir["client"]
    assert stat.S_IMODE(client.stat().st_mode) == 0o600
    assert f'username="admin" password="{admin}";' in client.read_text()
    assert "sasl.mechanism=SCRAM-SHA-512" in client.read_text()

    broker_dir["calls"].unlink()
    again = run_script("start-broker.sh", env)  # a restart: formatted already, nothing to add
    assert again.returncode == 0, again.stderr
    assert broker_dir["calls"].read_text().splitlines() == ["run"]

    bad = run_script("start-broker.sh", {**env, "SCRAM_ADMIN_PASSWORD": 'x"y'})
    assert bad.returncode != 0


# --- the clients' settings ---------------------------------------------------------------------------


SASL = {
    "kafka_security_protocol": "SASL_PLAINTEXT",
    "kafka_sasl_username": "membership",
    "kafka_sasl_password": "s3cret-pw",
}


def test_plaintext_is_the_default() -> None:
    security = KernelSettings().kafka_security()
    assert security["security_protocol"] == "PLAINTEXT"
    assert security["sasl_plain_username"] is None
    assert security["sasl_plain_password"] is None
    assert security["ssl_context"] is None


def test_sasl_gives_aiokafka_the_principal() -> None:
    security = KernelSettings(**SASL).kafka_security()
    assert security == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "membership",
        "sasl_plain_password": "s3cret-pw",
        "ssl_context": None,
    }


def test_sasl_ssl_verifies_the_broker_with_the_given_ca() -> None:
    import certifi  # noqa: PLC0415 - only a CA bundle to load

    settings = KernelSettings(
        **{**SASL, "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256"},
        kafka_ssl_cafile=certifi.where(),
    )
    security = settings.kafka_security()
    assert security["security_protocol"] == "SASL_SSL"
    assert security["sasl_mechanism"] == "SCRAM-SHA-256"
    context = security["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
    assert isinstance(KernelSettings(kafka_security_protocol="SSL").kafka_security()["ssl_context"], ssl.SSLContext)


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for missing in [{"kafka_sasl_username": None}, {"kafka_sasl_password": None}, {"kafka_sasl_password": ""}]:
        with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
            KernelSettings(**{**SASL, **missing})
    with pytest.raises(ValidationError):
        KernelSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="GSSAPI")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError):
        KernelSettings()


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "transfer")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "env-s3cret-pw")
    settings = KernelSettings()
    assert settings.kafka_security()["sasl_plain_password"] == "env-s3cret-pw"
    for shown in [repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())]:
        assert "env-s3cret-pw" not in shown
    assert "transfer" in repr(settings)


async def test_the_kernel_clients_sign_in_with_the_settings() -> None:
    settings = KernelSettings(**SASL, kafka_bootstrap_servers="127.0.0.1:1")
    producer = make_producer(settings, "p")
    consumer = make_consumer(settings, "g", ["union.membership.v1"])
    progress = PartitionProgress(settings, "g")  # its clients connect on first use, with these keywords
    assert {k: progress._common[k] for k in ("security_protocol", "sasl_mechanism", "sasl_plain_username")} == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "membership",
    }
    assert progress._common["sasl_plain_password"] == "s3cret-pw"
    try:
        for client in (producer.client, consumer._client):
            assert client._security_protocol == "SASL_PLAINTEXT"
            assert client._sasl_mechanism == "SCRAM-SHA-512"
            assert client._sasl_plain_username == "membership"
            assert client._sasl_plain_password == "s3cret-pw"
    finally:
        await consumer.stop()
        await producer.stop()


class RefusedError(Exception):
    pass


def test_unionctl_signs_in_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def client(*_: object, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise RefusedError

    async def no_records(*_: object) -> list[Any]:
        return []

    monkeypatch.setattr(cli, "AIOKafkaConsumer", client)
    monkeypatch.setattr(cli, "AIOKafkaProducer", client)
    runner = CliRunner(env={name.upper(): value for name, value in SASL.items()})  # read when a command runs
    assert isinstance(runner.invoke(cli.app, ["tail", "union.membership.v1"]).exception, RefusedError)
    assert isinstance(runner.invoke(cli.app, ["dlq", "list", "union.membership.v1"]).exception, RefusedError)
    monkeypatch.setattr(cli, "_read_topic", no_records)
    assert isinstance(runner.invoke(cli.app, ["dlq", "replay", "union.membership.v1"]).exception, RefusedError)
    assert len(seen) == 3
    for kwargs in seen:
        assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "membership"
        assert kwargs["sasl_plain_password"] == "s3cret-pw"
