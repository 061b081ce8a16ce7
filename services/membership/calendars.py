"""The working-day calendar the clocks are counted on: the State Council's notices loaded so far (and, for a year
none was loaded for, the one this release ships), provisional (the statutory rule) for every other year
(shared.workdays).

A notice is loaded as an event (WorkingCalendarLoaded, stream `calendar-{year}`), by an operator or, for the notices
this release ships, by the service at start. Loading it counts again every provisional clock of that year that is
still running (applications and members' requests in the work queue) and records each one whose deadline moves
(DeadlineRecounted). A clock already run out is never moved, nor is a clock counted on a notice: a correction of a
notice (which must name the one it corrects), a change of settings or of the package moves no clock. A review
recorded while a load counts an application again wins: that application is left alone.

Loads and clocks take one advisory lock (a load exclusive, a clock shared), so a clock counted while a notice is
loaded is either counted on it or seen, and counted again, by the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.membership import domain
from services.membership.events import ClockCounted, DeadlineRecounted, FestivalArrangement, WorkingCalendarLoaded
from shared import workdays
from shared.errors import ConcurrencyError, DomainError, InvalidInputError
from shared.events import DomainEvent
from shared.store import Metadata, StreamStore

_LOCK = "SELECT pg_advisory_xact_lock{}(6, hashtext(current_schema()))"  # 6: this schema's calendar
_parsed: dict[str, workdays.Notice] = {}  # notices by digest: parsed once per process


def calendar_stream(year: int) -> str:
    return f"calendar-{year}"


def _notice(row: asyncpg.Record) -> workdays.Notice:
    notice = _parsed.get(row["digest"])
    if notice is None:
        data = row["notice"] if isinstance(row["notice"], dict) else json.loads(row["notice"])
        notice = _parsed[row["digest"]] = workdays.Notice.model_validate(data)
    return notice


async def loaded(conn: asyncpg.Connection) -> workdays.Calendar:
    """The calendar as it stands: the notices loaded, and for a year none was loaded for, the one this release ships
    (so a rebuild that replays clocks before the shipped notices' loads counts them as they were counted)."""
    rows = await conn.fetch("SELECT year, digest, notice FROM work_calendars")
    years = {r["year"] for r in rows}
    shipped = [n for n in workdays.default_calendar().notices.values() if n.year not in years]
    return workdays.Calendar([*shipped, *(_notice(r) for r in rows)])


async def for_clock(conn: asyncpg.Connection) -> workdays.Calendar:
    """The calendar, for a transaction that records a clock: a load waits for it to commit, then sees its clock."""
    await conn.execute(_LOCK.format("_shared"))
    return await loaded(conn)


def notice_data(d: dict[str, Any]) -> dict[str, Any]:
    """The notice as shared.workdays.Notice takes it, from the data of the event that loaded it."""
    return {
        "year": d["year"],
        "number": d["number"],
        "published": d["notice_published"],
        "title": d.get("title"),
        "source": d.get("source"),
        "festivals": d["festivals"],
    }


@dataclass
class Loaded:
    """What a load did: the notice, whether it was new, and the clocks it moved."""

    year: int
    number: str
    new: bool
    recounted: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0  # provisional clocks counted again to the same deadline


async def load_notice(
    store: StreamStore,
    conn: asyncpg.Connection,
    notice: workdays.Notice,
    meta: Metadata,
    now: datetime,
    *,
    accept_package_differences: bool = False,
    replaces: str | None = None,
    only_if_absent: bool = False,
) -> Loaded:
    """Load a checked notice as its year's calendar and count the year's provisional clocks again. A notice that
    replaces another loaded for the year (a correction) must name it in `replaces`: clocks counted on the one it
    replaces keep their deadlines (a deadline counted on a notice stays). `only_if_absent`: nothing if one is."""
    await conn.execute(_LOCK.format(""))
    stream = await store.load(conn, calendar_stream(notice.year))
    previous = next((e.data for e in reversed(stream.events) if e.name == "WorkingCalendarLoaded"), None)
    if previous is not None and (previous["digest"] == notice.digest or only_if_absent):
        return Loaded(notice.year, previous["number"], new=False)
    differences = notice.package_differences() or []
    if differences and not accept_package_differences:
        shown = ", ".join(f"{d} ({'worked' if notice.is_workday(d) else 'off'} in the notice)" for d in differences)
        raise InvalidInputError(
            "festivals",
            f"the notice and the chinese-calendar package disagree on {len(differences)} day(s): {shown}; "
            "load it with accept_package_differences if the notice is right",
        )
    if previous is not None and replaces != previous["number"]:
        raise DomainError(
            "notice_loaded",
            f"{previous['number']} is loaded for {notice.year}: a notice that corrects it says so "
            f"(replaces: {previous['number']}); clocks counted on it keep their deadlines",
        )
    before = await loaded(conn)
    after = workdays.Calendar([*(n for y, n in before.notices.items() if y != notice.year), notice])
    event = WorkingCalendarLoaded(
        year=notice.year,
        number=notice.number,
        notice_published=notice.published,
        title=notice.title,
        source=notice.source,
        festivals=[FestivalArrangement.model_validate(f.model_dump()) for f in notice.festivals],
        digest=notice.digest,
        loaded_by=meta.actor,
        loaded_at=now,
        replaces=previous["number"] if previous else None,
        package_differences=differences,
    )
    outcome = Loaded(notice.year, notice.number, new=True)
    requests: list[DeadlineRecounted] = []
    applications: list[tuple[UUID, workdays.Clock]] = []
    for row in await _provisional_clocks(conn, notice.year, now):
        counted = json.loads(row["clock"])
        clock = after.clock(datetime.fromisoformat(counted["started_at"]), counted["working_days"])
        if clock.deadline == row["deadline"]:
            outcome.unchanged += 1
        elif row["kind"] == "application":
            applications.append((row["item_id"], clock))
        else:
            requests.append(_recounted(row, clock, notice.number))
    await store.append(conn, stream, [event, *requests], meta)
    outcome.recounted += [_shown(e) for e in requests]
    for application_id, clock in applications:
        events = await _recount_application(store, conn, application_id, clock, notice.number, now, meta)
        outcome.recounted += [_shown(e) for e in events if isinstance(e, DeadlineRecounted)]
    return outcome


async def _recount_application(
    store: StreamStore,
    conn: asyncpg.Connection,
    application_id: UUID,
    clock: workdays.Clock,
    number: str,
    now: datetime,
    meta: Metadata,
) -> list[DomainEvent]:
    """Count one application's clock again; a review recorded meanwhile wins (the application no longer waits)."""
    for attempt in range(3):
        try:
            async with conn.transaction():  # a savepoint: a lost race undoes this application only
                app_stream, app = await store.load_existing(
                    conn,
                    f"application-{application_id}",
                    domain.fold,
                    domain.Application,
                    "application",
                    application_id,
                )
                events = domain.recount_deadline(app, clock, number, now)
                if events:
                    await store.append(conn, app_stream, events, meta)
                return events
        except ConcurrencyError:
            if attempt == 2:
                raise
    return []


async def _provisional_clocks(conn: asyncpg.Connection, year: int, now: datetime) -> list[asyncpg.Record]:
    """The clocks in the queue still running and counted provisionally on `year`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT kind, item_id, member_id, org_id, submitted_at, deadline, clock FROM work_queue"
        " WHERE clock -> 'provisional' = 'true' AND kind IN ('application', 'request') AND NOT overdue"
        " AND deadline > $1"
        " AND clock -> 'counted_on' @> jsonb_build_array(jsonb_build_object('year', $2::int, 'notice', null))"
        " ORDER BY submitted_at, item_id",
        now,
        year,
    )
    return rows


def _recounted(row: asyncpg.Record, clock: workdays.Clock, number: str) -> DeadlineRecounted:
    return DeadlineRecounted(
        kind=row["kind"],
        item_id=row["item_id"],
        member_id=row["member_id"],
        org_id=row["org_id"],
        previous_deadline=row["deadline"],
        deadline=clock.deadline,
        clock=ClockCounted.model_validate(clock.as_json()),
        notice=number,
    )


def _shown(e: DeadlineRecounted) -> dict[str, Any]:
    return {"kind": e.kind, "id": e.item_id, "previous_deadline": e.previous_deadline, "deadline": e.deadline}


async def load_shipped(store: StreamStore, pool: asyncpg.Pool, now: datetime) -> int:
    """The notices this release ships, each loaded once (the service does it at start); whatever an operator loaded
    for a year stands. Returns how many were new."""
    new = 0
    for notice in workdays.shipped_notices():
        async with pool.acquire() as conn, conn.transaction():
            meta = Metadata(actor="system:release")
            new += (await load_notice(store, conn, notice, meta, now, only_if_absent=True)).new
    return new


# --- reads -------------------------------------------------------------------------------------------------


async def years(conn: asyncpg.Connection, now: datetime) -> dict[str, Any]:
    """The years with a notice loaded, and this year and the next whether loaded or not (then: provisional)."""
    rows = await conn.fetch("SELECT year, number, published, loaded_by, loaded_at FROM work_calendars")
    loaded = {r["year"]: dict(r) for r in rows}
    this_year = now.astimezone(workdays.CST).year
    listed = []
    for y in sorted({*loaded, this_year, this_year + 1}):
        notice = loaded.get(y, {"year": y, "number": None, "published": None, "loaded_by": None, "loaded_at": None})
        listed.append({**notice, "provisional": y not in loaded})
    return {"years": listed}


async def year(conn: asyncpg.Connection, year_: int) -> dict[str, Any]:
    """One year's calendar: the notice loaded for it, or the statutory days it is counted on provisionally."""
    row = await conn.fetchrow("SELECT * FROM work_calendars WHERE year = $1", year_)
    calendar = workdays.Calendar([_notice(row)] if row else [])
    answer: dict[str, Any] = {"year": year_, "provisional": row is None, "festivals": calendar.holidays(year_)}
    if row is None:
        answer["rule"] = workdays.statutory_rule(year_).name
    else:
        notice = _notice(row)
        answer.update(
            number=notice.number,
            published=notice.published,
            title=notice.title,
            source=notice.source,
            loaded_by=row["loaded_by"],
            loaded_at=row["loaded_at"],
            package_differences=json.loads(row["package_differences"]),
        )
    return answer
