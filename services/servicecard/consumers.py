"""Other services' events: the card follows what membership says about its member."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import asyncpg

from services.servicecard.domain import MEMBER_EVENTS
from services.servicecard.handlers import Servicecard
from shared.causation import caused_by
from shared.consumer import Handler
from shared.store import Recorded


def handlers(servicecard: Callable[[], Servicecard]) -> dict[str, Handler]:
    async def on_membership_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        if entry.name not in MEMBER_EVENTS:
            return  # organisations, applications: kept in the inbox, nothing to do
        meta = caused_by(entry, f"service:{entry.source}")
        await servicecard().follow_member(conn, UUID(str(entry.data["member_id"])), meta)

    return {"union.membership.v1": on_membership_event}
