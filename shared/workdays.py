"""Clocks in working days under the official Chinese calendar: public holidays off, 调休 make-up days on.

Union offices promise answers in working days (an online application: contact within 15 working days, 申工社 and
豫工惠). The calendar is the State Council's yearly notice as the `chinese-calendar` package carries it; a year it
does not carry yet (the notice comes out each November) is an error, never a silent weekday-only count: upgrade the
package. Counting follows the Civil Code: the day the period starts does not count (第二百零一条), and a period
ends at 24:00 of its last day (第二百零三条), China Standard Time. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar

CST = timezone(timedelta(hours=8), "CST")  # China Standard Time: no daylight saving

IsWorkday = Callable[[date], bool]


class CalendarUnknownError(ValueError):
    """The official calendar of a year is not known (yet) to this installation."""

    def __init__(self, day: date) -> None:
        super().__init__(
            f"the official working-day calendar of {day.year} is not known to this installation "
            "(upgrade the chinese-calendar package once the State Council publishes it)"
        )
        self.year = day.year


def official_workday(day: date) -> bool:
    """Whether `day` is a working day: a weekday that is no public holiday, or a weekend day made working (调休)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:  # the package's way of saying it holds no data for the year
        raise CalendarUnknownError(day) from exc


def due_date(start: date, working_days: int, is_workday: IsWorkday = official_workday) -> date:
    """The last day of a period of `working_days` working days that starts on `start` (which does not count)."""
    if working_days < 1:
        raise ValueError("a period is at least one working day")
    day, counted = start, 0
    while counted < working_days:
        day += timedelta(days=1)
        counted += is_workday(day)
    return day


def deadline(submitted_at: datetime, working_days: int, is_workday: IsWorkday = official_workday) -> datetime:
    """When a period of `working_days` working days from `submitted_at` runs out: 24:00 CST of its last day."""
    if submitted_at.tzinfo is None:
        raise ValueError("submitted_at must be timezone-aware")
    last = due_date(submitted_at.astimezone(CST).date(), working_days, is_workday)
    return datetime.combine(last + timedelta(days=1), time(), CST)


def working_days_between(start: datetime, end: datetime, is_workday: IsWorkday = official_workday) -> int:
    """Working days after `start`'s day up to and including `end`'s day (CST): a matter's age in working days."""
    first, last = start.astimezone(CST).date(), end.astimezone(CST).date()
    return sum(is_workday(first + timedelta(days=n)) for n in range(1, (last - first).days + 1))
