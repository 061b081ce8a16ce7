"""The four services as processes, on the session's PostgreSQL and broker, with their own schemas and topics."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.platform import Platform, available_services
from tests.conftest import Stack
from tests.support import auth


def _free_pair() -> int:
    """A free port, and the one a second replica would take (REPLICA_PORT_STEP above) free too."""
    from tests.e2e.test_replicas import _free_pair as free_pair  # noqa: PLC0415

    return free_pair()


@pytest.fixture(scope="module")
def platform(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    unique = os.urandom(4).hex()
    prefix = f"e{unique}."
    stack.provision(prefix)  # on Kafka: topics.txt under the prefix, and acls.txt granted on them
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA_PREFIX": f"e{unique}_",
        "PII_MASTER_KEY": key,
        "BLIND_INDEX_KEY": key,
        "BALLOT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "RELAY_POLL_INTERVAL": "0.05",
        "LOG_LEVEL": "INFO",
        "TRANSFER_EXPIRY_DAYS": "30",
        "APPLICATION_RATE_PER_ADDRESS": "100000/minute",  # every test applies from 127.0.0.1
    }
    services = available_services()
    running = Platform(
        env,
        dict.fromkeys(services, stack.dsn),
        Path(tmp_path_factory.mktemp("logs")),
        {name: _free_pair() for name in services},
        service_env=stack.service_env,  # on Kafka each signs in as its own principal
        replicas=int(os.environ.get("TEST_REPLICAS", "1")),  # make test-kafka: 2, the second on port + 100
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    admin = auth.bearer("admin", name="e2e-admin")
    made = {
        name: httpx.AsyncClient(base_url=platform.url(name), timeout=30, headers=admin)
        for name in platform.services  # a service's first replica
    }
    try:
        yield made
    finally:
        for client in made.values():
            await client.aclose()
