"""Membership's events: a join opens the member's dues account; status and organisation changes follow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import asyncpg

from published import membership
from published.membership import MOVED, STATUS_CHANGES
from services.dues.handlers import Dues, MembershipChange
from shared.causation import caused_by
from shared.consumer import BatchHandler, batch_handler
from shared.store import Recorded

# membership's event -> the status it leaves the member in (None: unchanged, a move)
STATUS: dict[str, str | None] = {**{name: status.value for name, status in STATUS_CHANGES.items()}, MOVED: None}


def _day(entry: Recorded) -> date:
    return entry.recorded_at.date()


def change(entry: Recorded) -> MembershipChange | None:
    """What dues follows of one of membership's events; None for what it leaves to the kernel's directory."""
    meta = caused_by(entry, f"service:{entry.source}")
    match membership.decode(entry.name, entry.data):
        case membership.MemberJoined() as joined:
            return MembershipChange(
                joined.member_id, _day(entry), meta, org_id=joined.org_id, joined=(joined.member_no, joined.joined_at)
            )
        case membership.MembershipRetained() as retained:  # held by `org_id` from `since`
            return MembershipChange(retained.member_id, retained.since, meta, STATUS[entry.name], retained.org_id)
        case membership.MemberOrganizationChanged() as moved:
            return MembershipChange(moved.member_id, _day(entry), meta, org_id=moved.to_org_id)
        case membership.MemberEvent() as event if entry.name in STATUS:
            return MembershipChange(event.member_id, _day(entry), meta, STATUS[entry.name])
    return None  # organisations, applications: the kernel's directory keeps what it needs


def handlers(dues: Callable[[], Dues]) -> dict[str, BatchHandler]:
    @batch_handler
    async def on_membership_events(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
        await dues().follow_membership(conn, [c for c in map(change, entries) if c is not None])

    return {membership.TOPIC: on_membership_events}
