"""Rate limits for the routes open to the public, by key (a client address, a person's blind index).

Moving windows in this process's memory (the `limits` library): each replica counts on its own, so N replicas
admit up to N times the limit; put the same limit on the ingress when running several. A refused call is
429 `rate_limited` with Retry-After.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from shared.errors import DomainError


class RateLimitedError(DomainError):
    status_code = 429

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(
            "rate_limited",
            f"too many {what}; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def parse_limit(value: str) -> RateLimitItem:
    """'5/hour', '30 per minute': refused at start-up when it does not parse."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rate limit such as '30/minute'") from exc


class RateLimiter:
    def __init__(self, limits: dict[str, str]) -> None:
        self.limits = {name: parse_limit(value) for name, value in limits.items()}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, name: str, key: str, what: str) -> None:
        """Count one call for `key` under the limit `name`; refuse it once the window is full."""
        item = self.limits[name]
        if await self._limiter.hit(item, name, key):
            return
        stats = await self._limiter.get_window_stats(item, name, key)
        raise RateLimitedError(what, max(1, math.ceil(stats.reset_time - time.time())))
