"""The work queue: what waits for a union office, each matter with its age and its clock, overdue first.

Projected from membership's own applications and from the events it consumes: transfers (union.transfer.v1, the
side whose step is due; the transfer service keeps its own clock and escalation, shown here as it says) and
members' requests (union.feedback.v1, answered within `request_working_days`). A row goes when its matter is
acted on. An application's clock that runs out is an event (ApplicationOverdue, services.membership.overdue), and
the application then waits in its parent organisation's queue as well.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from published import feedback, transfer
from services.membership import calendars
from shared import workdays
from shared.errors import DomainError, NotFoundError
from shared.pii import PersonalDataVault
from shared.projections import Projection, Statements, stmt
from shared.store import Recorded
from shared.validators import mask_identity_number

KINDS = ("application", "transfer", "request")

JSON = dict[str, Any]


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


_DELETE = "DELETE FROM work_queue WHERE kind = $1 AND item_id = $2::uuid"


def _delete(kind: str, key: str) -> Any:
    def on_closed(e: Recorded) -> Statements:
        return [stmt(_DELETE, kind, e.data[key])]

    return on_closed


_INSERT = (
    "INSERT INTO work_queue (kind, item_id, org_id, member_id, step, submitted_at, deadline, detail, clock) "
    "VALUES ($1, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8::jsonb, $9::jsonb) ON CONFLICT (kind, item_id) DO NOTHING"
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def projection(request_working_days: int, application_working_days: int) -> Projection:
    """The queue's read model, and the calendar its clocks are counted on; a request's clock is counted here, from
    when it was raised (feedback owns the request), an application's comes with it."""
    queue = Projection("work_queue", tables=["work_queue", "work_calendars"])

    @queue.on("ApplicationSubmitted")
    async def on_application_submitted(conn: asyncpg.Connection, e: Recorded) -> None:
        d = e.data
        clock = d.get("clock")
        deadline = _time(d["respond_by"]) if d.get("respond_by") else None
        if clock is None:  # submitted before clocks were never none: counted now, as the overdue worker counts it
            counted = (await calendars.for_clock(conn)).clock(e.recorded_at, application_working_days)
            deadline, clock = deadline or counted.deadline, counted.as_json()
        sealed = {"name_enc": d["name_enc"], "id_number_enc": d["id_number_enc"]}  # shown masked, never in clear
        await conn.execute(
            _INSERT,
            "application",
            d["application_id"],
            d["org_id"],
            d["member_id"],
            "review",
            e.recorded_at,
            deadline,
            json.dumps(sealed),
            json.dumps(clock),
        )

    @queue.on("ApplicationOverdue")
    def on_application_overdue(e: Recorded) -> Statements:
        d = e.data
        return [
            stmt(
                "UPDATE work_queue SET overdue = true, escalated_to = $2::uuid, deadline = $3 "
                "WHERE kind = 'application' AND item_id = $1::uuid",
                d["application_id"],
                d.get("escalated_to_org_id"),
                _time(d["respond_by"]),
            )
        ]

    queue.on("ApplicationApproved")(_delete("application", "application_id"))
    queue.on("ApplicationRejected")(_delete("application", "application_id"))

    _transfer_handlers(queue)
    _request_handlers(queue, request_working_days)
    _calendar_handlers(queue)
    return queue


def _transfer_handlers(queue: Projection) -> None:
    """Transfers, from the transfer service's topic (published/transfer.py): the side whose step is due."""

    @queue.on("TransferRequested", source=transfer.SOURCE)
    def on_transfer_requested(e: Recorded) -> Statements:
        requested = e.read_as(transfer.TransferRequested)
        detail = {"from_org_id": str(requested.from_org_id), "to_org_id": str(requested.to_org_id)}
        return [
            stmt(
                _INSERT,
                "transfer",
                requested.transfer_id,
                requested.from_org_id,
                requested.member_id,
                "release",
                requested.requested_at,
                requested.expires_at,
                json.dumps(detail),
                None,  # calendar days, the transfer service's
            )
        ]

    @queue.on("TransferReleased", source=transfer.SOURCE)
    def on_transfer_released(e: Recorded) -> Statements:
        released = e.read_as(transfer.TransferReleased)
        return [
            stmt(
                "UPDATE work_queue SET org_id = $2::uuid, step = 'accept' "
                "WHERE kind = 'transfer' AND item_id = $1::uuid",
                released.transfer_id,
                released.to_org_id,
            )
        ]

    @queue.on("TransferEscalated", source=transfer.SOURCE)
    def on_transfer_escalated(e: Recorded) -> Statements:
        escalated = e.read_as(transfer.TransferEscalated)
        return [
            stmt(
                "UPDATE work_queue SET escalated_to = $2::uuid, overdue = true, deadline = $3 "
                "WHERE kind = 'transfer' AND item_id = $1::uuid",
                escalated.transfer_id,
                escalated.escalated_to_org_id,
                escalated.expires_at,
            )
        ]

    def on_transfer_closed(e: Recorded) -> Statements:
        return [stmt(_DELETE, "transfer", e.read_as(transfer.TransferEvent).transfer_id)]

    for closed in (
        transfer.TransferAccepted,
        transfer.TransferCompleted,
        transfer.TransferRejected,
        transfer.TransferCancelled,
        transfer.TransferExpired,
    ):
        queue.on(closed.__name__, source=transfer.SOURCE)(on_transfer_closed)


def _request_handlers(queue: Projection, request_working_days: int) -> None:
    """Members' requests, from feedback's topic (published/feedback.py), answered within `request_working_days`."""

    @queue.on("RequestRaised", source=feedback.SOURCE)
    async def on_request_raised(conn: asyncpg.Connection, e: Recorded) -> None:
        raised = e.read_as(feedback.RequestRaised)
        clock = (await calendars.for_clock(conn)).clock(e.recorded_at, request_working_days)
        detail = {"category": raised.category}
        await conn.execute(
            _INSERT,
            "request",
            raised.request_id,
            raised.org_id,
            raised.member_id,
            "answer",
            e.recorded_at,
            clock.deadline,
            json.dumps(detail),
            json.dumps(clock.as_json()),
        )

    @queue.on("RequestAnswered", source=feedback.SOURCE)
    def on_request_answered(e: Recorded) -> Statements:
        return [stmt(_DELETE, "request", e.read_as(feedback.RequestAnswered).request_id)]


def _calendar_handlers(queue: Projection) -> None:
    """The calendar's table, and the queue's clocks as a notice loaded counts them again."""

    @queue.on("WorkingCalendarLoaded")
    async def on_calendar_loaded(conn: asyncpg.Connection, e: Recorded) -> None:
        d = e.data
        await conn.execute(
            "INSERT INTO work_calendars (year, number, published, digest, notice, package_differences, loaded_by,"
            " loaded_at) VALUES ($1, $2, $3::date, $4, $5::jsonb, $6::jsonb, $7, $8) ON CONFLICT (year) DO UPDATE"
            " SET number = excluded.number, published = excluded.published, digest = excluded.digest,"
            " notice = excluded.notice, package_differences = excluded.package_differences,"
            " loaded_by = excluded.loaded_by, loaded_at = excluded.loaded_at",
            d["year"],
            d["number"],
            date.fromisoformat(d["notice_published"]),
            d["digest"],
            json.dumps(calendars.notice_data(d)),
            json.dumps(d.get("package_differences", [])),
            d["loaded_by"],
            e.recorded_at,
        )
        # the running provisional clocks of that year are counted on the notice now; those it moved follow
        # (DeadlineRecounted), the others keep their deadline and name the notice. One that ran out stays as it
        # was counted, and says the notice came after it ran out
        rows = await conn.fetch(
            "SELECT kind, item_id, clock, (overdue OR deadline <= $1) AS ran_out FROM work_queue"
            " WHERE clock -> 'provisional' = 'true'",
            _time(d["loaded_at"]),
        )
        relabelled = [
            (r["kind"], r["item_id"], _relabel(r["clock"], d["year"], d["number"], ran_out=r["ran_out"])) for r in rows
        ]
        await conn.executemany(
            "UPDATE work_queue SET clock = $3::jsonb WHERE kind = $1 AND item_id = $2",
            [(kind, item_id, clock) for kind, item_id, clock in relabelled if clock is not None],
        )

    @queue.on("DeadlineRecounted")
    def on_deadline_recounted(e: Recorded) -> Statements:
        d = e.data
        return [
            stmt(
                "UPDATE work_queue SET deadline = $3, clock = $4::jsonb WHERE kind = $1 AND item_id = $2::uuid",
                d["kind"],
                d["item_id"],
                _time(d["deadline"]),
                json.dumps(d["clock"]),
            )
        ]


def _relabel(clock_json: str | dict[str, Any], year: int, number: str, *, ran_out: bool) -> str | None:
    """A clock's description with `year` counted on the notice `number` (or, for a clock that ran out, with the
    notice that came too late for it: `published_after`); None if it was not provisional on that year."""
    clock = json.loads(clock_json) if isinstance(clock_json, str) else dict(clock_json)
    counted_on = clock["counted_on"]
    if not any(y["year"] == year and y["notice"] is None and "published_after" not in y for y in counted_on):
        return None
    now_on = {"published_after": number} if ran_out else {"notice": number}
    clock["counted_on"] = [{**y, **now_on} if y["year"] == year else y for y in counted_on]
    clock["provisional"] = any(y["notice"] is None for y in clock["counted_on"])
    return json.dumps(clock)


# --- the view -------------------------------------------------------------------------------------------


def _cursor(as_of: datetime, row: asyncpg.Record) -> str:
    key = [as_of.isoformat(), row["late"], row["submitted_at"].isoformat(), row["kind"], str(row["item_id"])]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _after(cursor: str) -> tuple[datetime, bool, datetime, str, UUID]:
    try:
        as_of, late, submitted_at, kind, item_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        after = _time(as_of), bool(late), _time(submitted_at), str(kind), UUID(item_id)
    except (ValueError, TypeError):
        after = None
    if after is None or after[3] not in KINDS or after[0].tzinfo is None or after[2].tzinfo is None:
        raise DomainError("invalid_cursor", "the cursor is not one this service gave out", status_code=422)
    return after


def mask_name(name: str | None) -> str | None:
    """张伟 -> 张*: enough for staff to recognise a matter, not to identify a person from a list."""
    return f"{name[0]}{'*' * (len(name) - 1)}" if name else None


def _person(vault: PersonalDataVault, keys: dict[UUID, Any], subject: UUID, sealed: dict[str, Any]) -> JSON:
    values = {k: sealed[f"{k}_enc"] for k in ("name", "id_number") if sealed.get(f"{k}_enc")}
    clear = vault.open(keys.get(subject), subject, values) if values else {}
    id_number = clear.get("id_number")
    return {
        "name_masked": mask_name(clear.get("name")),
        "id_number_masked": mask_identity_number(id_number) if id_number else None,
    }


_PAGE = """
WITH scope AS (SELECT path FROM organizations WHERE org_id = $1),
items AS (
    SELECT q.*, (q.overdue OR coalesce(q.deadline <= $2, false)) AS late
    FROM work_queue q
    WHERE (q.org_id = $1 OR q.escalated_to = $1
           OR ($3 AND q.org_id IN (SELECT o.org_id FROM organizations o, scope WHERE o.path LIKE scope.path || '%')))
      AND ($4::text IS NULL OR q.kind = $4)
)
SELECT i.*, o.name AS org_name, m.member_no, m.name_enc AS m_name_enc, m.id_number_enc AS m_id_number_enc
FROM items i
LEFT JOIN organizations o ON o.org_id = i.org_id
LEFT JOIN members m ON m.member_id = i.member_id AND i.kind <> 'application'
WHERE ($5::boolean IS NULL OR i.late = $5)
  AND ($6::boolean IS NULL
       OR (i.late = $6 AND (i.submitted_at, i.kind, i.item_id) > ($7::timestamptz, $8::text, $9::uuid))
       OR ($6 AND NOT i.late))
ORDER BY i.late DESC, i.submitted_at, i.kind, i.item_id
LIMIT $10
"""


async def page(
    conn: asyncpg.Connection,
    vault: PersonalDataVault,
    org_id: UUID,
    *,
    now: datetime,
    kind: str | None = None,
    overdue: bool | None = None,
    subtree: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> JSON:
    """What waits for `org_id` (and, with `subtree`, for every organisation below it): overdue first, then oldest.

    A cursor keeps the first page's `now`, so an item whose clock runs out while someone pages does not move."""
    if not await conn.fetchval("SELECT 1 FROM organizations WHERE org_id = $1", org_id):
        raise NotFoundError("organization", org_id)
    late: bool | None = None
    submitted_at: datetime | None = None
    after_kind: str | None = None
    after_id: UUID | None = None
    if cursor:
        now, late, submitted_at, after_kind, after_id = _after(cursor)
    rows = await conn.fetch(
        _PAGE, org_id, now, subtree, kind, overdue, late, submitted_at, after_kind, after_id, limit + 1
    )
    calendar = await calendars.loaded(conn)
    keys = await vault.keys(conn, [r["member_id"] for r in rows[:limit]])  # one query for the page's keys
    items = [_item(vault, keys, r, now, calendar) for r in rows[:limit]]
    return {
        "org_id": org_id,
        "as_of": now,
        "items": items,
        "next_cursor": _cursor(now, rows[limit - 1]) if len(rows) > limit else None,
    }


def _item(
    vault: PersonalDataVault, keys: dict[UUID, Any], r: asyncpg.Record, now: datetime, calendar: workdays.Calendar
) -> JSON:
    detail = json.loads(r["detail"]) if isinstance(r["detail"], str) else dict(r["detail"])
    if r["kind"] == "application":
        person = _person(vault, keys, r["member_id"], detail)
        detail = {}
    else:
        person = _person(
            vault, keys, r["member_id"], {"name_enc": r["m_name_enc"], "id_number_enc": r["m_id_number_enc"]}
        )
    return {
        "kind": r["kind"],
        "id": r["item_id"],
        "step": r["step"],
        "member": {"member_id": r["member_id"], "member_no": r["member_no"], **person},
        "organization": {"org_id": r["org_id"], "name": r["org_name"]},
        "submitted_at": r["submitted_at"],
        "age_days": (now - r["submitted_at"]).days,
        "age_working_days": workdays.working_days_between(r["submitted_at"], now, calendar.is_workday),
        "deadline": r["deadline"],
        **clock_view(r["clock"]),
        "overdue": r["late"],
        "escalated": r["escalated_to"] is not None,
        "escalated_to_org_id": r["escalated_to"],
        **({"detail": detail} if detail else {}),
    }


def clock_view(clock: str | dict[str, Any] | None) -> JSON:
    """How a deadline shows what it was counted on: `provisional` (a year's notice was not loaded: counted on the
    statutory holidays alone, and counted again when it is, unless it ran out first) and `clock` (when it started,
    how many working days, and each year it spans with the notice it was counted on)."""
    if clock is None:  # no working-day clock: a transfer's (calendar days)
        return {"provisional": False, "clock": None}
    value = json.loads(clock) if isinstance(clock, str) else dict(clock)
    return {"provisional": bool(value["provisional"]), "clock": value}
