"""The working-day calendar: the notices loaded, each year's days off, and loading next year's notice (admins).

`unionctl calendar load FILE` sends a notice file here; the file's shape is the body's (shared/notices/2026.toml)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from services.membership import calendars
from services.membership.service import MembershipService
from shared import workdays
from shared.errors import InvalidInputError
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.routes import NO_TARGET

router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[MembershipService], routes.CALL]
Year = Annotated[int, Path(ge=workdays.FIRST_YEAR, le=workdays.LAST_YEAR, description="the calendar year")]


class NoticeIn(workdays.Notice):
    """国务院办公厅关于{year}年部分节假日安排的通知, as the notice files under shared/notices/ write it."""

    accept_package_differences: bool = Field(
        default=False, description="load it even where the chinese-calendar package disagrees (the notice is the law)"
    )
    replaces: str | None = Field(
        None, max_length=60, description="a correction: the number of the notice loaded for the year that it replaces"
    )


@router.get("/calendars", tags=["calendars"])
async def get_calendars(call: Call) -> dict[str, Any]:
    """The years whose notice is loaded, and whether this year and the next are counted provisionally."""
    return await call.read("calendar.read", NO_TARGET, lambda conn: calendars.years(conn, call.service.clock()))


@router.get("/calendars/{year}", tags=["calendars"])
async def get_calendar(year: Year, call: Call) -> dict[str, Any]:
    """A year's days off and worked weekend days by festival: from its notice, or provisional (the statutory rule)."""
    return await call.read("calendar.read", NO_TARGET, lambda conn: calendars.year(conn, year))


@router.put("/calendars/{year}", tags=["calendars"])
async def load_calendar(year: Year, body: NoticeIn, call: Call) -> Any:
    """Load the State Council's notice of a year: checked (every problem listed, nothing changed), recorded, and every
    provisional clock of the year still running counted again on it (each that moves recorded, with old and new).
    Loading the same notice again changes nothing; a different one for a year already loaded is refused (409
    `notice_loaded`) unless it names the one it corrects in `replaces`."""
    problems = body.problems()
    if body.year != year:
        problems.insert(0, ("year", f"the notice is of {body.year}, not of {year}"))
    if problems:
        raise InvalidInputError(*problems[0], *problems[1:])
    notice = workdays.Notice.model_validate(body.model_dump(exclude={"accept_package_differences", "replaces"}))

    async def load(conn: Any, meta: Any) -> dict[str, Any]:
        outcome = await calendars.load_notice(
            call.service.store,
            conn,
            notice,
            meta,
            call.service.clock(),
            accept_package_differences=body.accept_package_differences,
            replaces=body.replaces,
        )
        return {
            "year": outcome.year,
            "number": outcome.number,
            "loaded": outcome.new,
            "recounted": outcome.recounted,
            "unchanged": outcome.unchanged,
        }

    return await call.command("calendar.load", NO_TARGET, load)
