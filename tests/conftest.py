"""One PostgreSQL and one Tansu broker per test session; each test gets its own schema and topics."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack import procs
from devstack.broker import TansuBroker
from devstack.postgres import EmbeddedPostgres
from tests.support import auth


@dataclass
class Stack:
    postgres: EmbeddedPostgres
    broker: TansuBroker

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap


@pytest.fixture(scope="session", autouse=True)
def token_issuer() -> Iterator[None]:
    """Every service in this session, in process or not, verifies tokens with this issuer's public key."""
    path = auth.issuer().jwks_path
    os.environ["AUTH_JWKS"] = str(path)
    yield
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    external_db = os.environ.get("TEST_DATABASE_URL")
    root = procs.run_dir() / "test" / str(os.getpid())
    root.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(root / "pg", procs.free_port())
    broker = TansuBroker(procs.free_port(), root)
    if not external_db:
        postgres.start(durable=False)
    broker.start()
    try:
        yield Stack(postgres, broker)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def unique() -> str:
    """A short id for this test's schema, topics and consumer groups."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_prefix(stack: Stack, unique: str) -> str:
    return f"t{unique}."
