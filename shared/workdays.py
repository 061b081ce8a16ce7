"""Clocks in working days under the Chinese calendar: public holidays off, 调休 make-up days on. Pure: no I/O
but reading the files shipped beside it.

Union offices promise answers in working days (an online application: contact within 15 working days, 申工社 and
豫工惠). A year's calendar is the State Council's notice for it (国务院办公厅关于某年部分节假日安排的通知), loaded
as data (`Notice`, a TOML file per year in `shared/notices/`; next year's by an operator when it is published). A
year whose notice is not loaded yet is counted *provisionally* from the statutory holidays of the
全国年节及纪念日放假办法 in force that year (`shared/notices/statutory.toml`; festival dates from the lunar calendar by
`lunar_python`): never no clock, and a provisional clock says so (`Clock.provisional`) until the notice is loaded
and it is counted again. The `chinese-calendar` package stays a cross-check for the years it knows.

Counting follows the Civil Code: the day the period starts does not count (第二百零一条), and a period ends at 24:00
of its last day (第二百零三条), China Standard Time.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any

import chinese_calendar
from lunar_python import Lunar, Solar
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CST = timezone(timedelta(hours=8), "CST")  # China Standard Time: no daylight saving
NOTICES = Path(__file__).parent / "notices"  # the notices this release ships, and the statutory rule

IsWorkday = Callable[[date], bool]
# the years a calendar can be had for: from the first version of the statutory rule in notices/statutory.toml
FIRST_YEAR, LAST_YEAR = 2008, 2200


class Festival(StrEnum):
    """The seven festivals every notice arranges (全体公民放假的节日)."""

    NEW_YEAR = "new_year"
    SPRING_FESTIVAL = "spring_festival"
    QINGMING = "qingming"
    LABOUR_DAY = "labour_day"
    DRAGON_BOAT = "dragon_boat"
    MID_AUTUMN = "mid_autumn"
    NATIONAL_DAY = "national_day"

    @property
    def chinese(self) -> str:
        return _CHINESE[self]


_CHINESE = {
    Festival.NEW_YEAR: "元旦",
    Festival.SPRING_FESTIVAL: "春节",
    Festival.QINGMING: "清明节",
    Festival.LABOUR_DAY: "劳动节",
    Festival.DRAGON_BOAT: "端午节",
    Festival.MID_AUTUMN: "中秋节",
    Festival.NATIONAL_DAY: "国庆节",
}


# --- the statutory rule: what is known of any year before its notice --------------------------------------


@dataclass(frozen=True)
class StatutoryRule:
    """One version of the 放假办法's article 2: each festival's days, as rules (`shared/notices/statutory.toml`)."""

    name: str
    in_force_from: date
    days: Mapping[Festival, tuple[str, ...]]

    def festival_days(self, year: int) -> dict[Festival, list[date]]:
        return {festival: [_statutory_day(year, rule) for rule in rules] for festival, rules in self.days.items()}


def _statutory_day(year: int, rule: str) -> date:
    """`MM-DD` (a fixed date), `lunar:M-D` (that day of the lunar year that starts in `year`), `lunar:eve` (the
    last day of the lunar year before it: 除夕), or `term:清明` (a solar term's day in `year`)."""
    kind, _, value = rule.rpartition(":")
    if kind == "":
        month, day = value.split("-")
        return date(year, int(month), int(day))
    if kind == "lunar":
        if value == "eve":
            return _solar(Lunar.fromYmd(year, 1, 1).getSolar()) - timedelta(days=1)
        month, day = value.split("-")
        return _solar(Lunar.fromYmd(year, int(month), int(day)).getSolar())
    if kind == "term":
        return _solar(Solar.fromYmd(year, 6, 1).getLunar().getJieQiTable()[value])
    raise ValueError(f"unknown statutory day rule {rule!r}")


def _solar(solar: Solar) -> date:
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


@cache
def statutory_rules() -> tuple[StatutoryRule, ...]:
    data = tomllib.loads((NOTICES / "statutory.toml").read_text("utf-8"))
    rules = [
        StatutoryRule(r["name"], r["in_force_from"], {Festival(k): tuple(v) for k, v in r["days"].items()})
        for r in data["rule"]
    ]
    return tuple(sorted(rules, key=lambda r: r.in_force_from))


def statutory_rule(year: int) -> StatutoryRule:
    """The version of the rule in force on the year's first day."""
    in_force = [r for r in statutory_rules() if r.in_force_from <= date(year, 1, 1)]
    if not in_force:
        raise ValueError(f"no statutory holiday rule known for {year}")
    return in_force[-1]


@cache
def statutory_holidays(year: int) -> frozenset[date]:
    return frozenset(d for days in statutory_rule(year).festival_days(year).values() for d in days)


# --- the State Council's notice of a year ----------------------------------------------------------------


class FestivalDays(BaseModel):
    """One festival's arrangement: the days off (放假调休) and the weekend days worked instead (上班)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    festival: Festival
    off: list[date] = Field(min_length=1, max_length=15)
    worked: list[date] = Field(default_factory=list, max_length=5)


class Notice(BaseModel):
    """国务院办公厅关于{year}年部分节假日安排的通知, as data. `problems()` says whether it can be a calendar."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    year: Annotated[int, Field(ge=FIRST_YEAR, le=LAST_YEAR)]
    number: Annotated[str, Field(min_length=1, max_length=60, description="文号, e.g. 国办发明电〔2025〕7号")]
    published: date
    title: Annotated[str | None, Field(max_length=200)] = None
    source: Annotated[str | None, Field(max_length=500, description="where it was published")] = None
    festivals: list[FestivalDays] = Field(max_length=10)

    @cached_property
    def off(self) -> dict[date, Festival]:
        return {d: f.festival for f in self.festivals for d in f.off}

    @cached_property
    def worked(self) -> dict[date, Festival]:
        return {d: f.festival for f in self.festivals for d in f.worked}

    @property
    def digest(self) -> str:
        """What identifies this content: the same file loaded twice is one load."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def is_workday(self, day: date) -> bool:
        if day in self.worked:
            return True
        return day.weekday() < 5 and day not in self.off

    def problems(self) -> list[tuple[str, str]]:
        """Every reason this notice cannot be a calendar, as (field, reason); empty when it can."""
        found: list[tuple[str, str]] = []
        if self.published > date(self.year, 12, 31):
            found.append(("published", f"{self.published} is after the year {self.year} it arranges"))
        found += self._days_problems()
        arranged = self._arranged()
        for festival, places in arranged.items():
            if len(places) > 1:
                found.append((f"festivals[{places[1]}].festival", f"{festival} is arranged twice"))
        missing = [f for f in Festival if f not in arranged]
        if missing:
            names = ", ".join(f"{f.chinese} ({f})" for f in missing)
            found.append(("festivals", f"the seven festivals must all be arranged; missing: {names}"))
        if not found:  # the days are sound: do they hold the statutory days?
            found += self._statutory_days_missing(arranged)
        return found

    def _arranged(self) -> dict[Festival, list[int]]:
        places: dict[Festival, list[int]] = {}
        for i, arrangement in enumerate(self.festivals):
            places.setdefault(arrangement.festival, []).append(i)
        return places

    def _days_problems(self) -> list[tuple[str, str]]:
        """Days outside the year, days off twice, worked days that are not weekend days or are also off."""
        found: list[tuple[str, str]] = []
        off_at: dict[date, str] = {}
        for i, arrangement in enumerate(self.festivals):
            for j, day in enumerate(arrangement.off):
                if day in off_at:
                    found.append((f"festivals[{i}].off[{j}]", f"{day} is off twice (also in {off_at[day]})"))
                off_at.setdefault(day, f"festivals[{i}].off")
        for i, arrangement in enumerate(self.festivals):
            allowed = self._days_allowed(arrangement.festival)
            for kind, days in (("off", arrangement.off), ("worked", arrangement.worked)):
                found += [
                    (f"festivals[{i}].{kind}[{j}]", f"{d} is not in {self.year}{allowed[2]}")
                    for j, d in enumerate(days)
                    if not allowed[0] <= d <= allowed[1]
                ]
            for j, day in enumerate(arrangement.worked):
                where = f"festivals[{i}].worked[{j}]"
                if day.weekday() < 5:
                    found.append((where, f"{day} is a {day:%A}: only a weekend day is worked (调休)"))
                if day in off_at:
                    found.append((where, f"{day} is both off ({off_at[day]}) and worked"))
        return found

    def _days_allowed(self, festival: Festival) -> tuple[date, date, str]:
        """The days a festival's arrangement may name: its year's, and for New Year the last week of the year before
        too (the 2019 notice gave 2018-12-30 and 31 off and had 2018-12-29 worked)."""
        last = date(self.year, 12, 31)
        if festival is Festival.NEW_YEAR:
            return date(self.year - 1, 12, 25), last, " (nor in the last week of the year before)"
        return date(self.year, 1, 1), last, ""

    def _statutory_days_missing(self, arranged: Mapping[Festival, list[int]]) -> list[tuple[str, str]]:
        found = []
        for festival, days in statutory_rule(self.year).festival_days(self.year).items():
            place = arranged[festival][0]
            absent = ", ".join(str(d) for d in days if d not in self.festivals[place].off)
            if absent:
                found.append((f"festivals[{place}].off", f"{festival.chinese}'s statutory days are not off: {absent}"))
        return found

    def package_differences(self) -> list[date] | None:
        """Days this notice and the `chinese-calendar` package answer differently; None where it knows no such year."""
        first = date(self.year, 1, 1)
        days = [first + timedelta(days=n) for n in range((date(self.year + 1, 1, 1) - first).days)]
        try:
            return [d for d in days if self.is_workday(d) != bool(chinese_calendar.is_workday(d))]
        except NotImplementedError:
            return None


class NoticeError(ValueError):
    """A notice that cannot be a calendar, with every reason at once."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))
        self.problems = problems


def checked_notice(data: Mapping[str, Any]) -> Notice:
    """A notice from its data (a parsed file or a request body), or NoticeError with every problem in it: what is
    malformed (a date that does not exist, a festival unknown), and what the rules find in the rest."""
    try:
        notice = Notice.model_validate(data)
    except ValidationError as exc:
        malformed = [(field_name(e["loc"]), e["msg"]) for e in exc.errors()]
        salvaged = _without(data, [e["loc"] for e in exc.errors()])
        try:
            rest = Notice.model_validate(salvaged).problems() if salvaged is not None else []
        except ValidationError:
            rest = []
        raise NoticeError(malformed + [p for p in rest if p not in malformed]) from None
    problems = notice.problems()
    if problems:
        raise NoticeError(problems)
    return notice


def field_name(loc: Iterable[int | str]) -> str:
    """`('festivals', 0, 'off', 1)` as `festivals[0].off[1]`: one way of naming a field in every problem."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "notice"


def _without(data: Mapping[str, Any], bad: list[tuple[int | str, ...]]) -> dict[str, Any] | None:
    """The notice without its malformed days (and festivals), so the rules can look at the rest; None where what
    is malformed is what the rules need (the year)."""
    if any(loc[:1] == ("year",) for loc in bad):
        return None
    salvaged: dict[str, Any] = {**data, "number": data.get("number") or "?", "published": date(2000, 1, 1)}
    festivals = [dict(f) if isinstance(f, Mapping) else {} for f in data.get("festivals") or []]
    dropped: set[int] = set()
    for loc in bad:
        if loc[:1] != ("festivals",) or len(loc) < 2 or not isinstance(loc[1], int):
            continue
        i = loc[1]
        if len(loc) >= 4 and loc[2] in ("off", "worked") and isinstance(loc[3], int):
            festivals[i][loc[2]] = [d if n != loc[3] else None for n, d in enumerate(festivals[i][loc[2]])]
        else:
            dropped.add(i)
    salvaged["festivals"] = [
        {**f, **{k: [d for d in f.get(k, []) if d is not None] for k in ("off", "worked") if k in f}}
        for i, f in enumerate(festivals)
        if i not in dropped
    ]
    return salvaged


def read_notice(path: Path) -> Notice:
    """A notice file (TOML, as `shared/notices/2026.toml`), checked."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NoticeError([("file", f"{path.name} is not a TOML file: {exc}")]) from None
    return checked_notice(data)


def shipped_notices() -> list[Notice]:
    """The notices this release carries, one file a year."""
    return [read_notice(p) for p in sorted(NOTICES.glob("[0-9][0-9][0-9][0-9].toml"))]


# --- a calendar: notices where loaded, the statutory rule elsewhere ----------------------------------------


@dataclass(frozen=True)
class YearBasis:
    """What one year of a clock was counted on: a notice (its number), or the statutory rule (provisional)."""

    year: int
    notice: str | None

    @property
    def provisional(self) -> bool:
        return self.notice is None


@dataclass(frozen=True)
class Clock:
    """A period's start and end, and what it was counted on."""

    started_at: datetime
    deadline: datetime
    working_days: int
    counted_on: tuple[YearBasis, ...]

    @property
    def provisional(self) -> bool:
        return any(y.provisional for y in self.counted_on)

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "working_days": self.working_days,
            "provisional": self.provisional,
            "counted_on": [{"year": y.year, "notice": y.notice} for y in self.counted_on],
        }


class Calendar:
    """Working days from the notices given, and provisionally from the statutory rule for any other year."""

    def __init__(self, notices: Iterable[Notice] = ()) -> None:
        self.notices = {n.year: n for n in notices}
        # what each notice arranges, wherever the day falls (a New Year's days may lie in the December before)
        self.arranged = {d: False for n in self.notices.values() for d in n.off} | {
            d: True for n in self.notices.values() for d in n.worked
        }

    def is_workday(self, day: date) -> bool:
        arranged = self.arranged.get(day)
        if arranged is not None:
            return arranged
        if day.year in self.notices:
            return day.weekday() < 5
        return day.weekday() < 5 and day not in statutory_holidays(day.year)

    def basis(self, year: int) -> YearBasis:
        notice = self.notices.get(year)
        return YearBasis(year, notice.number if notice else None)

    def clock(self, start: datetime, working_days: int) -> Clock:
        """The clock of a period of `working_days` working days from `start`."""
        end = deadline(start, working_days, self.is_workday)
        first, last = start.astimezone(CST).year, (end - timedelta(microseconds=1)).astimezone(CST).year
        return Clock(start, end, working_days, tuple(self.basis(y) for y in range(first, last + 1)))

    def holidays(self, year: int) -> list[dict[str, Any]]:
        """A year's days off and worked weekend days, by festival, as this calendar counts them."""
        notice = self.notices.get(year)
        if notice is not None:
            return [f.model_dump(mode="json") for f in notice.festivals]
        days = statutory_rule(year).festival_days(year)
        return [{"festival": f.value, "off": [d.isoformat() for d in days[f]], "worked": []} for f in days]


def default_calendar() -> Calendar:
    """The shipped notices: what a clock is counted on where no store of loaded notices is at hand."""
    return Calendar(_shipped())


@cache
def _shipped() -> tuple[Notice, ...]:
    return tuple(shipped_notices())


def official_workday(day: date) -> bool:
    """Whether `day` is a working day under the shipped notices (the statutory rule for other years)."""
    return default_calendar().is_workday(day)


# --- counting ----------------------------------------------------------------------------------------------


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
