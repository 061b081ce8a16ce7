"""Starting the services as processes: one that exits at start stops the start, and nothing it started outlives it."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from devstack.platform import Platform
from tests.conftest import Stack
from tests.e2e.test_replicas import _free_pair


def test_a_service_that_exits_at_start_leaves_no_other_running(stack: Stack, tmp_path: Path) -> None:
    unique = os.urandom(4).hex()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "TOPIC_PREFIX": f"p{unique}.",
        "DB_SCHEMA_PREFIX": f"p{unique}_",
        "PII_MASTER_KEY": "not a key",  # membership refuses to start without a key it can use
        "BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    services = ["membership", "dues"]  # both are started before either is waited for
    platform = Platform(
        env,
        dict.fromkeys(services, stack.dsn),
        tmp_path,
        {name: _free_pair() for name in services},
        service_env=stack.service_env,
    )
    with pytest.raises(RuntimeError, match="membership exited"):
        platform.start()
    assert [p.process.poll() is not None for p in platform.processes.values() if p.process] == [True, True]
