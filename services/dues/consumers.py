"""Membership's events: a join opens the member's dues account; status and organisation changes follow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID

import asyncpg

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
        d = entry.data
        if entry.name == "MemberJoined":
            meta = caused_by(entry, f"service:{entry.source}")
            await dues().open_account(
                conn,
                UUID(str(d["member_id"])),
                str(d["member_no"]),
                UUID(str(d["org_id"])),
                date.fromisoformat(str(d["joined_at"])),
                _day(entry),
                meta,
            )
        elif entry.name in STATUS:
            meta = caused_by(entry, f"service:{entry.source}")
            org = d.get("to_org_id") or (d.get("org_id") if entry.name == "MembershipRetained" else None)
            on = date.fromisoformat(str(d["since"])) if entry.name == "MembershipRetained" else _day(entry)
            await dues().follow_status(
                conn, UUID(str(d["member_id"])), STATUS[entry.name], UUID(str(org)) if org else None, on, meta
            )
        # organisations, applications: the kernel's directory keeps what it needs

    return {"union.membership.v1": on_membership_event}
