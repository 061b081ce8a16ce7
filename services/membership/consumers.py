"""Other services' events: a completed transfer moves the member; everything else feeds the dossier."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import asyncpg

from services.membership import retention
from services.membership.handlers import Membership
from shared.causation import caused_by
from shared.consumer import Handler, InboxKeeps
from shared.store import Recorded

# the dossier and the member's overview show every consumed event about a member: the inbox keeps them all
INBOX_KEEPS: InboxKeeps = {f"/union/{source}": None for source in ("transfer", "dues", "servicecard", "feedback")}


def _about_whom(entry: Recorded) -> None:
    """The dossier's one contract with other services: an event about a member names them by `member_id`.

    A value that is not a member id is the sender's bug: refused here (to the dead-letter topic), not kept."""
    if "member_id" in entry.data:
        try:
            UUID(str(entry.data["member_id"]))
        except ValueError as exc:
            raise ValueError(f"member_id {entry.data['member_id']!r} is not a member id") from exc


def handlers(membership: Callable[[], Membership]) -> dict[str, Handler]:
    async def on_transfer_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        _about_whom(entry)
        if entry.name != "TransferCompleted":
            return  # kept in the inbox for the dossier
        d = entry.data
        meta = caused_by(entry, f"service:{entry.source}")
        await membership().change_organization(
            conn, UUID(str(d["member_id"])), UUID(str(d["to_org_id"])), UUID(str(d["transfer_id"])), meta
        )

    async def keep_for_the_dossier(_: asyncpg.Connection, entry: Recorded) -> None:
        """The inbox row is the record; nothing else changes."""
        _about_whom(entry)

    async def on_dues_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        """Staff decided a lapse on the dues service's case: membership records it (it owns the status)."""
        _about_whom(entry)
        if entry.name != "LapseDecided":
            return  # kept in the inbox for the dossier
        d = entry.data
        meta = caused_by(entry, f"service:{entry.source}")
        await retention.lapse(
            membership(), conn, UUID(str(d["member_id"])), UUID(str(d["case_id"])), d["reason"], d["decided_by"], meta
        )

    return {
        "union.transfer.v1": on_transfer_event,
        "union.dues.v1": on_dues_event,
        "union.servicecard.v1": keep_for_the_dossier,
        "union.feedback.v1": keep_for_the_dossier,  # members' requests: the work queue and the member's overview
    }
