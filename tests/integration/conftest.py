from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.messaging import create_topics
from shared.runtime import Runtime
from shared.settings import KernelSettings
from tests.conftest import Stack
from tests.support import kernel_app


@pytest.fixture
def kernel_settings(stack: Stack, unique: str) -> KernelSettings:
    return KernelSettings(
        database_url=stack.dsn, db_schema=f"t_{unique}", kafka_bootstrap_servers=stack.bootstrap,
        topic_prefix=f"t{unique}.", relay_poll_interval=0.1,
    )


@pytest.fixture
async def kernel(kernel_settings: KernelSettings) -> AsyncIterator[Runtime]:
    """The kernel test service with its store only: no relay, no consumer."""
    runtime = Runtime(kernel_app.definition(), kernel_settings)
    await runtime.start(background=False)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def topics(stack: Stack, kernel_settings: KernelSettings) -> list[str]:
    names = [kernel_settings.topic(n) for n in ("union.kerneltest.v1", "union.remote.v1", "union.remote.v1.dlq")]
    await create_topics(stack.bootstrap, names, partitions=3)
    return names
