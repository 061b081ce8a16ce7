"""The fault suite's stack (`python -m devstack.run` on ports and a folder of its own), its organisations, and
the table of outcomes at the end of the run."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devstack import procs
from tests.faults import report
from tests.faults.stack import SupervisedStack


@contextlib.contextmanager
def running(request: pytest.FixtureRequest, stack: SupervisedStack) -> Iterator[SupervisedStack]:
    """The stack started, then stopped; its folder removed, or, when a test failed (or FAULTS_KEEP_LOGS is set),
    all but the database (and the Kafka nodes' data), so the logs of every process stay for a look."""
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if request.session.testsfailed or os.environ.get("FAULTS_KEEP_LOGS"):
            shutil.rmtree(stack.run_dir / "pg", ignore_errors=True)
            for data in (stack.run_dir / "kafka").glob("cluster-*/node-*/data"):
                shutil.rmtree(data, ignore_errors=True)
        else:
            shutil.rmtree(stack.run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def supervised_stack(request: pytest.FixtureRequest) -> Iterator[SupervisedStack]:
    """`make run` on Tansu (BROKER=tansu), one process of each service (test_cluster_faults.py has its own)."""
    with running(request, SupervisedStack(procs.run_dir() / "test" / f"faults-{os.getpid()}")) as stack:
        yield stack


@dataclass
class Union:
    town: str  # where the load's workers apply
    staff: dict[str, str]  # the county's staff, who approve


@pytest.fixture(scope="module")
async def union(supervised_stack: SupervisedStack) -> Union:
    issuer = supervised_stack.issuer()
    admin = {"Authorization": f"Bearer {issuer.mint('admin', name='fault-suite')}"}
    async with httpx.AsyncClient(base_url=supervised_stack.url("membership"), headers=admin, timeout=10) as m:
        county = await m.post("/organizations", json={"name": "县总工会", "type": "county", "region_code": "310115"})
        assert county.status_code == 201, county.text
        org = {"name": "镇总工会", "type": "township", "region_code": "310115", "parent_id": county.json()["org_id"]}
        town = await m.post("/organizations", json=org)
        assert town.status_code == 201, town.text
    staff = issuer.mint("staff", org_id=county.json()["org_id"], name="fault-suite staff")
    return Union(town.json()["org_id"], {"Authorization": f"Bearer {staff}"})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not report.RESULTS:
        return
    path = report.write(report.RESULTS, procs.run_dir())
    terminalreporter.section("fault suite")
    terminalreporter.write_line(report.table(report.RESULTS))
    terminalreporter.write_line(f"(also in {path})")
