"""Other services' events: the card follows what membership says about its member."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from published import membership
from services.servicecard.domain import MEMBER_EVENTS
from services.servicecard.handlers import Servicecard
from shared.causation import caused_by
from shared.consumer import BatchHandler, InboxKeeps, batch_handler
from shared.store import Recorded

# what membership said about a member, read again for each batch of members (Servicecard._member_facts)
INBOX_KEEPS: InboxKeeps = {membership.SOURCE: MEMBER_EVENTS}


def handlers(servicecard: Callable[[], Servicecard]) -> dict[str, BatchHandler]:
    @batch_handler
    async def on_membership_events(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
        # organisations, applications: kept in the inbox, nothing to do
        caused = [
            (entry, caused_by(entry, f"service:{entry.source}")) for entry in entries if entry.name in MEMBER_EVENTS
        ]
        await servicecard().follow_members(conn, caused)

    return {membership.TOPIC: on_membership_events}
