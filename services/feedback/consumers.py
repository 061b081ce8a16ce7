"""Other services' events: membership's fill the directory, the service card's the redemptions that may be rated.

The projections (projections.py) do the work, in the inbox transaction; the handlers have nothing to add.
"""

from __future__ import annotations

import asyncpg

from published import membership, servicecard
from shared.consumer import Handler
from shared.store import Recorded


async def read_models_only(conn: asyncpg.Connection, entry: Recorded) -> None:
    """The inbox row and the projections are the whole effect."""


def handlers() -> dict[str, Handler]:
    return {
        membership.TOPIC: read_models_only,
        servicecard.TOPIC: read_models_only,
    }
