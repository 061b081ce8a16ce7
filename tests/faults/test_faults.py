"""Faults under load on the whole supervised stack: every join approved is one MemberJoined, one card and one
member in every read model, none doubled, and the flow comes back within seconds.

One stack for the module, the cases in this order: each service SIGKILLed, PostgreSQL SIGKILLed, the whole
stack stopped (SIGTERM) and started again, and last the broker SIGKILLed while a consumer is behind (it
restarts empty)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults.checks import assert_whole, exercise, supervisor_said
from tests.faults.conftest import Union
from tests.faults.stack import SERVICES, SupervisedStack

pytestmark = pytest.mark.slow


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
