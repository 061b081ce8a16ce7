"""Other services' events: a completed transfer moves the member, a lapse decided on the dues service's case ends the
membership; everything else feeds the dossier. Each is read through its producer's published language (published/)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import asyncpg

from published import dues, feedback, servicecard, transfer
from services.membership import retention
from services.membership.handlers import Membership
from shared.causation import caused_by
from shared.consumer import Handler, InboxKeeps
from shared.store import Recorded

# the dossier and the member's overview show every consumed event about a member: the inbox keeps them all
INBOX_KEEPS: InboxKeeps = dict.fromkeys((transfer.SOURCE, dues.SOURCE, servicecard.SOURCE, feedback.SOURCE))


def _about_whom(entry: Recorded) -> None:
    """The dossier's one contract with other services, whatever the event (one this release does not know too): an
    event about a member names them by `member_id`.

    A value that is not a member id is the sender's bug: refused here (to the dead-letter topic), not kept."""
    if "member_id" in entry.data:
        try:
            UUID(str(entry.data["member_id"]))
        except ValueError as exc:
            raise ValueError(f"member_id {entry.data['member_id']!r} is not a member id") from exc


def handlers(membership: Callable[[], Membership]) -> dict[str, Handler]:
    async def on_transfer_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        _about_whom(entry)
        if entry.name != transfer.TransferCompleted.__name__:
            return  # kept in the inbox for the dossier
        # what membership keeps of a completed transfer (its publisher says so): the transfer, the member, the target
        completed = entry.read_as(transfer.TransferEvent)
        meta = caused_by(entry, f"service:{entry.source}")
        await membership().change_organization(
            conn, completed.member_id, completed.to_org_id, completed.transfer_id, meta
        )

    async def keep_for_the_dossier(_: asyncpg.Connection, entry: Recorded) -> None:
        """The inbox row is the record; nothing else changes."""
        _about_whom(entry)

    async def on_dues_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        """Staff decided a lapse on the dues service's case: membership records it (it owns the status)."""
        _about_whom(entry)
        match dues.decode(entry.name, entry.data):
            case dues.LapseDecided() as lapse:
                meta = caused_by(entry, f"service:{entry.source}")
                await retention.lapse(
                    membership(), conn, lapse.member_id, lapse.case_id, lapse.reason, lapse.decided_by, meta
                )
            case _:
                return  # kept in the inbox for the dossier

    return {
        transfer.TOPIC: on_transfer_event,
        dues.TOPIC: on_dues_event,
        servicecard.TOPIC: keep_for_the_dossier,
        feedback.TOPIC: keep_for_the_dossier,  # members' requests: the work queue and the member's overview
    }
