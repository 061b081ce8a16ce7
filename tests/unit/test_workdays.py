"""Working-day clocks: the official calendar's holidays and 调休 make-up days, counted as the Civil Code counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.workdays import (
    CST,
    CalendarUnknownError,
    deadline,
    due_date,
    official_workday,
    working_days_between,
)

# 国务院办公厅关于2025年部分节假日安排的通知: 国庆节、中秋节 10月1日至8日放假调休，共8天。
# 9月28日（周日）、10月11日（周六）上班。 Written out here so the test holds whatever the package says.
HOLIDAYS_2025 = {date(2025, 10, d) for d in range(1, 9)}
MAKE_UP_2025 = {date(2025, 9, 28), date(2025, 10, 11)}


def fixed_2025(day: date) -> bool:
    if day in MAKE_UP_2025:
        return True
    return day.weekday() < 5 and day not in HOLIDAYS_2025


def weekdays(day: date) -> bool:
    return day.weekday() < 5


FRIDAY_BEFORE_NATIONAL_DAY = datetime(2025, 9, 26, 16, 30, tzinfo=CST)


def test_an_application_on_the_friday_before_national_day_is_due_on_the_fifteenth_working_day() -> None:
    # counted: 9/28 (Sunday, worked) 9/29 9/30, then 10/9 10/10 10/11 (Saturday, worked) 10/13 ... 10/23
    assert due_date(FRIDAY_BEFORE_NATIONAL_DAY.date(), 15, fixed_2025) == date(2025, 10, 23)
    assert deadline(FRIDAY_BEFORE_NATIONAL_DAY, 15, fixed_2025) == datetime(2025, 10, 24, tzinfo=CST)


def test_the_official_calendar_agrees_with_the_notice() -> None:
    assert deadline(FRIDAY_BEFORE_NATIONAL_DAY, 15) == datetime(2025, 10, 24, tzinfo=CST)
    assert official_workday(date(2025, 9, 28)) is True  # a Sunday made a working day
    assert official_workday(date(2025, 10, 8)) is False  # a Wednesday off


def test_without_the_holidays_the_same_clock_would_run_out_eight_days_earlier() -> None:
    assert deadline(FRIDAY_BEFORE_NATIONAL_DAY, 15, weekdays) == datetime(2025, 10, 18, tzinfo=CST)


def test_2026_mid_autumn_and_national_day() -> None:
    # 2026-09-25 is itself a holiday (中秋); 9/20 and 10/10 are worked. Counted: 9/28 9/29 9/30, 10/8 10/9 10/10 ...
    submitted = datetime(2026, 9, 25, 10, tzinfo=CST)
    assert due_date(submitted.date(), 15) == date(2026, 10, 22)


def test_the_day_is_the_day_in_china() -> None:
    # 17:00 UTC on Friday 26 September is already Saturday 27 September in Beijing: counting starts from Sunday 28th
    late = datetime(2025, 9, 26, 17, tzinfo=UTC)
    assert due_date(late.astimezone(CST).date(), 1, fixed_2025) == date(2025, 9, 28)
    assert deadline(late, 1, fixed_2025) == datetime(2025, 9, 29, tzinfo=CST)


def test_a_year_the_calendar_does_not_know_is_an_error_not_a_guess() -> None:
    with pytest.raises(CalendarUnknownError, match="2099"):
        deadline(datetime(2099, 6, 1, tzinfo=CST), 15)


def test_naive_times_and_empty_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        deadline(datetime(2025, 9, 26), 15, weekdays)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="at least one"):
        due_date(date(2025, 9, 26), 0, weekdays)


# hypothesis takes naive bounds and adds the zone itself
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001
        max_value=datetime(2026, 6, 30),  # noqa: DTZ001
        timezones=st.just(CST),
    ),
    n=st.integers(min_value=1, max_value=40),
)
def test_the_deadline_falls_after_exactly_n_working_days(start: datetime, n: int) -> None:
    end = deadline(start, n)
    last_day = end - timedelta(microseconds=1)
    assert official_workday(last_day.date())
    assert working_days_between(start, last_day) == n
