"""One fault case under load, and what it must show: every join approved is one MemberJoined, one card and one
member in every read model, none doubled, and a join approved after the fault's end gets through.

The fault may take a while (a rolling restart, a 30 s outage): `flow back` and `ready` are measured from its end,
the `fault` column says how long it lasted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from tests.faults.conftest import Union
from tests.faults.load import JoinLoad
from tests.faults.report import RESULTS, Outcome
from tests.faults.stack import MODELS, SupervisedStack, everywhere, rows_per_member

BEFORE = 2.0  # s of load before the fault
AFTER = 2.0  # s of load once the flow is back
FLOW_TIMEOUT = 90.0
SETTLE_TIMEOUT = 30.0  # what has not arrived by then is lost

# the fault: does it, returns once it is over, with an optional note for the table
Fault = Callable[[], Awaitable[str | None]]


async def flow_back(stack: SupervisedStack, load: JoinLoad, since: float) -> float | None:
    """Seconds from `since` (the fault's end) until a join approved after it is in every read model."""
    while time.monotonic() - since < FLOW_TIMEOUT:
        recent = load.approved_since(since)
        if recent and await everywhere(stack, recent[-50:]):
            return time.monotonic() - since
        await asyncio.sleep(0.25)
    return None


async def ready_again(stack: SupervisedStack, since: float, notes: list[str]) -> float | None:
    """Seconds from `since` until every service process's /readyz answers 200; else None, and what the last look
    found missing in `notes`."""
    await asyncio.sleep(max(0.0, since + 1 - time.monotonic()))
    problems: dict[str, str] = {}
    async with httpx.AsyncClient() as client:
        while time.monotonic() - since < FLOW_TIMEOUT:
            problems = await stack.not_ready(client)
            if not problems:
                return time.monotonic() - since
            await asyncio.sleep(0.25)
    notes.extend(f"not ready: {name}: {problem}" for name, problem in problems.items())
    return None


async def settled(stack: SupervisedStack, members: list[str]) -> dict[str, dict[str, int]]:
    """Rows per member in each read model, once every member is everywhere (or the time is up)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        found = await rows_per_member(stack, members)
        if all(len(found[m]) == len(members) for m in MODELS) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def exercise(stack: SupervisedStack, union: Union, case: str, fault: Fault) -> Outcome:
    started = time.monotonic()
    load = JoinLoad(stack.urls("membership"), union.town, union.staff)
    load.start()
    await asyncio.sleep(BEFORE)
    fault_at = time.monotonic()
    try:
        note = await fault()
    except BaseException:
        await load.stop()
        raise
    ended = time.monotonic()
    notes = [note] if note else []
    flow, ready = await asyncio.gather(flow_back(stack, load, ended), ready_again(stack, ended, notes))
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
        fault=ended - fault_at,
        flow_back=flow,
        ready=ready,
        seconds=time.monotonic() - started,
        notes=notes,
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
