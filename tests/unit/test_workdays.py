"""Working-day clocks: the official calendar's holidays and 调休 make-up days, counted as the Civil Code counts; the
State Council's notices as data, and the provisional calendar of a year whose notice is not loaded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.workdays import (
    CST,
    FIRST_YEAR,
    LAST_YEAR,
    Calendar,
    Festival,
    NoticeError,
    checked_notice,
    deadline,
    due_date,
    official_workday,
    read_notice,
    shipped_notices,
    statutory_rule,
    working_days_between,
)
from tests.support.data import NOTICES

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


def test_a_year_without_a_notice_is_counted_provisionally_never_not_at_all() -> None:
    # 2026-12-20 (a Sunday): 21-25, 28-31 December, then 2027 provisionally: 1 January off (元旦), 4-8 and 11 January
    clock = Calendar(shipped_notices()).clock(datetime(2026, 12, 20, 10, tzinfo=CST), 15)
    assert clock.deadline == datetime(2027, 1, 12, tzinfo=CST)
    assert clock.provisional
    assert [(y.year, y.notice) for y in clock.counted_on] == [(2026, "国办发明电〔2025〕7号"), (2027, None)]
    # the 2027 notice (a fixture) also gives 4 January off: the same clock, counted on it, ends a day later
    official = Calendar([*shipped_notices(), read_notice(NOTICES / "2027.toml")]).clock(clock.started_at, 15)
    assert official.deadline == datetime(2027, 1, 13, tzinfo=CST)
    assert not official.provisional
    assert deadline(datetime(2099, 6, 1, tzinfo=CST), 15) > datetime(2099, 6, 1, tzinfo=CST)  # any year has a clock


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


def _days(year: int) -> list[date]:
    return [date(year, 1, 1) + timedelta(days=n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]


def test_the_shipped_2026_notice_agrees_with_the_package_on_every_day_of_2026() -> None:
    [notice] = [n for n in shipped_notices() if n.year == 2026]
    assert (notice.number, notice.published) == ("国办发明电〔2025〕7号", date(2025, 11, 4))
    calendar = Calendar([notice])
    disagree = [d for d in _days(2026) if calendar.is_workday(d) != chinese_calendar.is_workday(d)]
    assert disagree == []
    assert len(_days(2026)) == 365
    assert notice.package_differences() == []
    assert all(n.package_differences() == [] for n in shipped_notices())  # 2025's too


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_the_provisional_rule_differs_from_the_notices_only_on_tiaoxiu_and_bridge_days(year: int) -> None:
    """The statutory rule in force (2014 version for 2024, 2024 amendment from 2025) against the notices (as the
    `chinese-calendar` package carries them), day by day. Every difference is a weekend day worked (调休) or a
    weekday the notice gives off around a festival (a bridge day: the notice's run of days off, or a day in lieu):

    2024 worked: 02-04 02-18 04-07 04-28 05-11 09-14 09-29 10-12; bridge: 02-13 02-14 02-15 02-16 04-05 05-02 05-03
         09-16 10-04 10-07
    2025 worked: 01-26 02-08 04-27 09-28 10-11; bridge: 02-03 02-04 05-05 06-02 10-07 10-08
    2026 worked: 01-04 02-14 02-28 05-09 09-20 10-10; bridge: 01-02 02-20 02-23 04-06 05-04 05-05 10-05 10-06 10-07

    So a provisional clock errs both ways, by a few days at most: a bridge day counted as working ends it early, a
    weekend day worked and not counted ends it late. Every day the statutory rule has off is off in the notice too.
    """
    provisional = Calendar()
    differences = [d for d in _days(year) if provisional.is_workday(d) != chinese_calendar.is_workday(d)]
    worked = [d for d in differences if d.weekday() >= 5]
    bridges = [d for d in differences if d.weekday() < 5]
    assert all(chinese_calendar.is_workday(d) for d in worked)  # weekend days the notice made working
    for day in bridges:
        off, festival = chinese_calendar.get_holiday_detail(day)
        assert off, day
        assert festival is not None, f"{day} is off in the notice but belongs to no festival"
        assert provisional.is_workday(day)  # never the other way round
    expected = {
        2024: (8, 10),
        2025: (5, 6),
        2026: (6, 9),
    }
    assert (len(worked), len(bridges)) == expected[year]


def test_every_year_a_calendar_is_asked_for_has_a_statutory_rule() -> None:
    assert statutory_rule(FIRST_YEAR).in_force_from == date(FIRST_YEAR, 1, 1)
    last = statutory_rule(LAST_YEAR).festival_days(LAST_YEAR)  # the lunar dates are known that far
    assert last[Festival.SPRING_FESTIVAL][1].month in {1, 2}
    assert last[Festival.MID_AUTUMN][0].month in {9, 10}
    with pytest.raises(ValueError, match="no statutory holiday rule"):
        statutory_rule(FIRST_YEAR - 1)


def test_the_statutory_rule_follows_the_2024_amendment_from_2025() -> None:
    old, new = statutory_rule(2024).festival_days(2024), statutory_rule(2025).festival_days(2025)
    assert (len(old[Festival.SPRING_FESTIVAL]), len(new[Festival.SPRING_FESTIVAL])) == (3, 4)
    assert (len(old[Festival.LABOUR_DAY]), len(new[Festival.LABOUR_DAY])) == (1, 2)
    assert new[Festival.SPRING_FESTIVAL][0] == date(2025, 1, 28)  # 除夕
    assert {f: len(d) for f, d in statutory_rule(2027).festival_days(2027).items()} == {
        Festival.NEW_YEAR: 1,
        Festival.SPRING_FESTIVAL: 4,
        Festival.QINGMING: 1,
        Festival.LABOUR_DAY: 2,
        Festival.DRAGON_BOAT: 1,
        Festival.MID_AUTUMN: 1,
        Festival.NATIONAL_DAY: 3,
    }


def test_a_bad_notice_is_refused_with_every_problem_listed() -> None:
    good = read_notice(NOTICES / "2027.toml").model_dump()
    bad = {
        **good,
        "festivals": [
            {"festival": "new_year", "off": [date(2026, 12, 20), date(2027, 1, 1)], "worked": [date(2027, 1, 4)]},
            {"festival": "spring_festival", "off": [date(2027, 2, 6), date(2027, 2, 8)], "worked": [date(2027, 2, 6)]},
            {"festival": "spring_festival", "off": [date(2027, 2, 9)]},
            *good["festivals"][2:6],  # no national day
        ],
    }
    with pytest.raises(NoticeError) as refused:
        checked_notice(bad)
    assert refused.value.problems == [
        ("festivals[0].off[0]", "2026-12-20 is not in 2027 (nor in the last week of the year before)"),
        ("festivals[0].worked[0]", "2027-01-04 is a Monday: only a weekend day is worked (调休)"),
        ("festivals[1].worked[0]", "2027-02-06 is both off (festivals[1].off) and worked"),
        ("festivals[2].festival", "spring_festival is arranged twice"),
        ("festivals", "the seven festivals must all be arranged; missing: 国庆节 (national_day)"),
    ]


def test_a_notice_without_a_festival_s_statutory_days_is_refused() -> None:
    good = read_notice(NOTICES / "2027.toml").model_dump()
    festivals = [f if f["festival"] != "national_day" else {**f, "off": [date(2027, 10, 1)]} for f in good["festivals"]]
    with pytest.raises(NoticeError, match="国庆节's statutory days are not off: 2027-10-02, 2027-10-03"):
        checked_notice({**good, "festivals": festivals})


def test_a_notice_of_malformed_data_names_the_fields() -> None:
    with pytest.raises(NoticeError) as refused:
        checked_notice({"year": 1900, "number": "", "published": "yesterday", "festivals": []})
    assert {field for field, _ in refused.value.problems} == {"year", "number", "published"}


def test_a_new_year_arranged_in_the_december_before_is_taken_as_the_notice_says() -> None:
    """国务院办公厅关于2019年部分节假日安排的通知: 元旦 2018年12月30日至2019年1月1日放假调休，12月29日（周六）上班."""
    days = {
        "new_year": ([date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)], [date(2018, 12, 29)]),
        "spring_festival": ([date(2019, 2, d) for d in range(4, 11)], [date(2019, 2, 2), date(2019, 2, 3)]),
        "qingming": ([date(2019, 4, d) for d in range(5, 8)], []),
        "labour_day": ([date(2019, 5, d) for d in range(1, 5)], [date(2019, 4, 28), date(2019, 5, 5)]),
        "dragon_boat": ([date(2019, 6, d) for d in range(7, 10)], []),
        "mid_autumn": ([date(2019, 9, d) for d in range(13, 16)], []),
        "national_day": ([date(2019, 10, d) for d in range(1, 8)], [date(2019, 9, 29), date(2019, 10, 12)]),
    }
    notice = checked_notice(
        {
            "year": 2019,
            "number": "国办发明电〔2018〕15号",
            "published": date(2018, 12, 6),
            "festivals": [{"festival": f, "off": off, "worked": worked} for f, (off, worked) in days.items()],
        }
    )
    calendar = Calendar([notice])
    assert calendar.is_workday(date(2018, 12, 29))  # a Saturday worked
    assert not calendar.is_workday(date(2018, 12, 31))  # a Monday off
    december = [date(2018, 12, d) for d in range(20, 32)] + _days(2019)
    assert [d for d in december if calendar.is_workday(d) != chinese_calendar.is_workday(d)] == []


def test_what_is_malformed_and_what_breaks_the_rules_are_listed_together() -> None:
    data = read_notice(NOTICES / "2027.toml").model_dump(mode="json")
    data["festivals"][1]["off"][2] = "2027-02-30"
    data["festivals"][0]["worked"] = ["2027-01-06"]
    data["festivals"] = data["festivals"][:6]
    with pytest.raises(NoticeError) as refused:
        checked_notice(data)
    assert [field for field, _ in refused.value.problems] == [
        "festivals[1].off[2]",
        "festivals[0].worked[0]",
        "festivals",
    ]
