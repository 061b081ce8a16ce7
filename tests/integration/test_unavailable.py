"""While its database is down a service answers 503 JSON with Retry-After (never a plain-text 500), says so on
/readyz, and serves again once the database is back, without a restart of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from devstack import procs
from devstack.postgres import EmbeddedPostgres
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.support.waiting import eventually


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A server of this test's own: the session's is shared by every other test."""
    folder = procs.run_dir() / "test" / f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    server = EmbeddedPostgres(folder / "pg", procs.free_port()).start()  # durable: it is killed mid-test
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def membership_on_own_database(
    own_postgres: EmbeddedPostgres, membership_settings: Any, all_topics: list[str]
) -> AsyncIterator[ServiceUnderTest]:
    from services.membership.main import build_app  # noqa: PLC0415

    settings = membership_settings.model_copy(update={"database_url": own_postgres.dsn, "db_connect_timeout": 2})
    async with serve_in_process(build_app(settings)) as running:
        yield running


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


ORG = {"name": "county union", "type": "county", "region_code": "310115"}


async def test_a_service_whose_database_died_answers_503_and_recovers(
    stack: Stack, own_postgres: EmbeddedPostgres, membership_on_own_database: ServiceUnderTest
) -> None:
    m = membership_on_own_database
    created = await m.post("/organizations", json=ORG)
    assert created.status_code == 201, created.text
    org_id = created.json()["org_id"]

    async def ready() -> bool:
        return (await m.get("/readyz")).status_code == 200

    await eventually(ready)

    own_postgres.kill()  # SIGKILL of the server and its backends: the pool's connections break under the service
    assert_unavailable(await m.get(f"/organizations/{org_id}"))  # a read on a broken connection
    assert_unavailable(await m.post("/organizations", json=ORG))  # a command that cannot connect at all
    not_ready = await m.get("/readyz")
    assert not_ready.status_code == 503
    assert any(part.startswith("database") for part in not_ready.json()["missing"]), not_ready.json()

    await asyncio.to_thread(own_postgres.restart)

    async def serves() -> bool:
        return (await m.get(f"/organizations/{org_id}")).status_code == 200

    await eventually(serves)
    again = await m.post("/organizations", json=ORG, headers={"Idempotency-Key": "after-the-outage"})
    assert again.status_code == 201, again.text
    await eventually(ready)
