from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack import probe as kernel_app
from shared.runtime import Runtime
from shared.settings import KernelSettings
from tests.conftest import Stack
from tests.support import auth


@pytest.fixture
def kernel_settings(stack: Stack, unique: str) -> KernelSettings:
    return KernelSettings(
        database_url=stack.dsn,
        db_schema=f"t_{unique}",
        **stack.settings(),
        topic_prefix=f"t{unique}.",
        relay_poll_interval=0.1,
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
    await stack.create_topics(names, partitions=3)
    return names


ALL_TOPICS = [
    "union.membership.v1",
    "union.membership.restricted.v1",
    "union.transfer.v1",
    "union.servicecard.v1",
    "union.feedback.v1",
    "union.dues.v1",
    "union.regional.employment.v1",
]


def secret(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


@dataclass
class ServiceUnderTest:
    http: httpx.AsyncClient
    app: FastAPI

    @property
    def service(self) -> Any:
        return self.app.state.service

    async def post(self, path: str, json: object = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post(path, json=json, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def put(self, path: str, json: object = None, **kwargs: Any) -> httpx.Response:
        return await self.http.put(path, json=json, **kwargs)


@asynccontextmanager
async def serve_in_process(app: FastAPI) -> AsyncIterator[ServiceUnderTest]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers=auth.bearer("admin", name="test-admin"),
        ) as http,
    ):
        yield ServiceUnderTest(http, app)


@pytest.fixture
async def all_topics(stack: Stack, topic_prefix: str) -> list[str]:
    names = [topic_prefix + t for t in ALL_TOPICS] + [topic_prefix + t + ".dlq" for t in ALL_TOPICS]
    await stack.provision_async(topic_prefix)  # on Kafka: topics.txt's configs (the restricted topic is compacted)
    return names


@pytest.fixture
def pii_keys() -> dict[str, str]:
    return {"pii_master_key": secret(32), "blind_index_key": secret(32)}


@pytest.fixture
def membership_settings(stack: Stack, unique: str, topic_prefix: str, pii_keys: dict[str, str]) -> Any:
    from services.membership.service import MembershipSettings  # noqa: PLC0415

    return MembershipSettings(
        database_url=stack.dsn,
        db_schema=f"m_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        relay_poll_interval=0.05,
        founding_threshold=3,
        run_consumers=False,
        application_rate_per_address="100000/minute",  # the suite applies from one address; see test_security
        application_rate_per_person="100/minute",
        **pii_keys,
    )


@pytest.fixture
async def membership(membership_settings: Any, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    """Membership in this process, without its consumer (tests of consumed events ask for `membership_consuming`)."""
    from services.membership.main import build_app  # noqa: PLC0415

    async with serve_in_process(build_app(membership_settings)) as running:
        yield running


class MovableClock:
    """A service's clock, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def feedback_settings(stack: Stack, unique: str, topic_prefix: str) -> Any:
    from services.feedback.service import FeedbackSettings  # noqa: PLC0415

    return FeedbackSettings(
        database_url=stack.dsn,
        db_schema=f"f_{unique}",
        **stack.settings(),
        topic_prefix=topic_prefix,
        relay_poll_interval=0.05,
        campaign_sweep_interval=0.2,
        ballot_master_key=secret(32),
    )


@pytest.fixture
async def feedback(feedback_settings: Any, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    """Feedback in this process, consuming the membership and service card topics, on a clock tests can move."""
    from services.feedback.main import build_app  # noqa: PLC0415

    async with serve_in_process(build_app(feedback_settings)) as running:
        running.service.clock = MovableClock()
        yield running


@pytest.fixture
async def membership_consuming(membership_settings: Any, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    from services.membership.main import build_app  # noqa: PLC0415

    settings = membership_settings.model_copy(update={"run_consumers": True})
    async with serve_in_process(build_app(settings)) as running:
        yield running
