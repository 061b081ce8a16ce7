"""Other services' events: a completed transfer moves the member; everything else feeds the dossier."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import asyncpg

from services.membership.handlers import Membership
from shared.consumer import Handler
from shared.store import Metadata, Recorded


def handlers(membership: Callable[[], Membership]) -> dict[str, Handler]:
    async def on_transfer_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        if entry.name != "TransferCompleted":
            return  # kept in the inbox for the dossier
        d = entry.data
        meta = Metadata(
            actor=f"service:{entry.source}",
            causation_id=str(entry.event_id),
            correlation_id=str(entry.event_id),
            traceparent=entry.metadata.get("traceparent"),
        )
        await membership().change_organization(
            conn, UUID(str(d["member_id"])), UUID(str(d["to_org_id"])), UUID(str(d["transfer_id"])), meta
        )

    async def keep_for_the_dossier(conn: asyncpg.Connection, entry: Recorded) -> None:
        """The inbox row is the record; nothing else changes."""

    return {
        "union.transfer.v1": on_transfer_event,
        "union.servicecard.v1": keep_for_the_dossier,
    }
