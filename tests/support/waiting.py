"""Waiting for what happens elsewhere: reads across services, consumers and relays are eventually consistent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], what: str = "", timeout: float = 45) -> Any:
    """Poll `check` until it returns something truthy, and return that; fail naming `what` after `timeout` s
    (a consumer group's join alone takes a few seconds on the embedded broker)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := await check()):
        assert loop.time() < deadline, f"timed out waiting for {what or getattr(check, '__name__', 'a check')}"
        await asyncio.sleep(0.1)
    return result
