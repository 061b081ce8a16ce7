"""Faults under load on the whole supervised stack: every join approved is one MemberJoined, one card and one
member in every read model, none doubled, and the flow comes back within seconds.

One stack for the module, the cases in this order: each service SIGKILLed, PostgreSQL SIGKILLed, the whole
stack stopped (SIGTERM) and started again, and last the broker SIGKILLed while a consumer is behind (it
restarts empty)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.faults.conftest import Union
from tests.faults.load import JoinLoad
from tests.faults.report import RESULTS, Outcome
from tests.faults.stack import MODELS, SERVICES, SupervisedStack, everywhere, rows_per_member

pytestmark = pytest.mark.slow

BEFORE = 2.0  # s of load before the fault
AFTER = 2.0  # s of load once the flow is back
FLOW_TIMEOUT = 90.0
SETTLE_TIMEOUT = 30.0  # what has not arrived by then is lost


async def flow_back(stack: SupervisedStack, load: JoinLoad, fault_at: float) -> float | None:
    """Seconds from the fault until a join approved after it is in every read model."""
    while time.monotonic() - fault_at < FLOW_TIMEOUT:
        recent = load.approved_since(fault_at)
        if recent and await everywhere(stack, recent[-50:]):
            return time.monotonic() - fault_at
        await asyncio.sleep(0.25)
    return None


async def ready_again(stack: SupervisedStack, fault_at: float) -> float | None:
    await asyncio.sleep(max(0.0, fault_at + 1 - time.monotonic()))
    async with httpx.AsyncClient() as client:
        while time.monotonic() - fault_at < FLOW_TIMEOUT:
            if await stack.all_ready(client):
                return time.monotonic() - fault_at
            await asyncio.sleep(0.25)
    return None


async def settled(stack: SupervisedStack, members: list[str]) -> dict[str, dict[str, int]]:
    """Rows per member in each read model, once every member is everywhere (or the time is up)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        found = await rows_per_member(stack, members)
        if all(len(found[m]) == len(members) for m in MODELS) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def exercise(stack: SupervisedStack, union: Union, case: str, fault: Callable[[], Awaitable[None]]) -> Outcome:
    started = time.monotonic()
    load = JoinLoad(stack.url("membership"), union.town, union.staff)
    load.start()
    await asyncio.sleep(BEFORE)
    fault_at = time.monotonic()
    await fault()
    flow, ready = await asyncio.gather(flow_back(stack, load, fault_at), ready_again(stack, fault_at))
    await asyncio.sleep(AFTER)
    await load.stop()
    members = list(load.approved)
    found = await settled(stack, members)
    outcome = Outcome(
        case=case,
        approvals=len(members),
        rows={m: sum(found[m].values()) for m in MODELS},
        missing={m: len(members) - len(found[m]) for m in MODELS},
        doubled=len({member for m in MODELS for member, n in found[m].items() if n > 1}),
        unavailable=load.unavailable,
        unexpected=load.unexpected,
        flow_back=flow,
        ready=ready,
        seconds=time.monotonic() - started,
    )
    RESULTS.append(outcome)
    return outcome


def assert_whole(outcome: Outcome) -> None:
    assert outcome.approvals > 0
    assert not outcome.unexpected, outcome.unexpected[:5]
    assert outcome.missing == dict.fromkeys(MODELS, 0), f"lost: {outcome.missing}"
    assert outcome.doubled == 0
    assert outcome.flow_back is not None, "no join made it through after the fault"
    assert outcome.ready is not None, "not every service was ready again"


def supervisor_said(stack: SupervisedStack, offset: int, name: str) -> None:
    said = stack.output(offset)
    assert f"{name} (pid" in said, said
    assert f"{name} restarted" in said, said


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_killed(supervised_stack: SupervisedStack, union: Union, service: str) -> None:
    offset = supervised_stack.mark()

    async def kill() -> None:
        supervised_stack.kill(service)

    assert_whole(await exercise(supervised_stack, union, f"SIGKILL {service}", kill))
    supervisor_said(supervised_stack, offset, service)


async def test_postgres_killed(supervised_stack: SupervisedStack, union: Union) -> None:
    offset = supervised_stack.mark()

    async def kill() -> None:
        supervised_stack.kill("postgres")

    outcome = await exercise(supervised_stack, union, "SIGKILL postgres", kill)
    assert_whole(outcome)
    supervisor_said(supervised_stack, offset, "postgres")


async def test_the_whole_stack_stopped_and_started(supervised_stack: SupervisedStack, union: Union) -> None:
    async def restart() -> None:
        await asyncio.to_thread(supervised_stack.stop)
        await asyncio.to_thread(supervised_stack.start)

    assert_whole(await exercise(supervised_stack, union, "SIGTERM stack, start", restart))


async def test_the_broker_killed_comes_back_empty(supervised_stack: SupervisedStack, union: Union) -> None:
    """Feedback is held (SIGSTOP) for a second first, so the broker dies holding joins it acknowledged and no
    consumer of feedback's has read: what the broker forgot, only the stores still have."""
    offset = supervised_stack.mark()

    async def kill() -> None:
        supervised_stack.kill("feedback", signal.SIGSTOP)
        try:
            await asyncio.sleep(1)
            supervised_stack.kill("kafka", signal.SIGKILL)
        finally:
            supervised_stack.kill("feedback", signal.SIGCONT)

    outcome = await exercise(supervised_stack, union, "SIGKILL broker, feedback behind", kill)
    supervisor_said(supervised_stack, offset, "kafka")
    assert_whole(outcome)
