"""Membership's events: a join opens the member's dues account; status and organisation changes follow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import asyncpg

from published import membership
from published.membership import MOVED, STATUS_CHANGES
from services.dues.handlers import Dues
from shared.causation import caused_by
from shared.consumer import Handler
from shared.store import Recorded

# membership's event -> the status it leaves the member in (None: unchanged, a move)
STATUS: dict[str, str | None] = {**{name: status.value for name, status in STATUS_CHANGES.items()}, MOVED: None}


def _day(entry: Recorded) -> date:
    return entry.recorded_at.date()


def handlers(dues: Callable[[], Dues]) -> dict[str, Handler]:
    async def on_membership_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        event = membership.decode(entry.name, entry.data)
        meta = caused_by(entry, f"service:{entry.source}")
        match event:
            case membership.MemberJoined():
                await dues().open_account(
                    conn, event.member_id, event.member_no, event.org_id, event.joined_at, _day(entry), meta
                )
            case membership.MembershipRetained():  # held by `org_id` from `since`
                await dues().follow_status(conn, event.member_id, STATUS[entry.name], event.org_id, event.since, meta)
            case membership.MemberOrganizationChanged():
                await dues().follow_status(conn, event.member_id, None, event.to_org_id, _day(entry), meta)
            case membership.MemberEvent() if entry.name in STATUS:
                await dues().follow_status(conn, event.member_id, STATUS[entry.name], None, _day(entry), meta)
        # organisations, applications: the kernel's directory keeps what it needs

    return {membership.TOPIC: on_membership_event}
