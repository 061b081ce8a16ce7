"""The month, day, year and period parameters every service takes, as pydantic types: one rule (shared.validators),
one reason per fault, and the same pattern in the OpenAPI document that the parser enforces.

    @router.get("/organizations/{org_id}/dues/report")
    async def report(org_id: UUID, first: Annotated[Month, Query()], last: Annotated[Month, Query()]) -> ...:
        months_between(first, last, longest=120, field="query.last")
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, PlainValidator, WithJsonSchema

from shared.errors import InvalidInputError
from shared.validators import (
    DAY_PATTERN,
    EARLIEST_YEAR,
    LATEST_YEAR,
    MONTH_PATTERN,
    YEAR_PATTERN,
    parse_day,
    parse_month,
    period_problem,
    year_problem,
)

# a month, as the first day of it: `2026-03`
Month = Annotated[
    date,
    PlainValidator(parse_month),
    WithJsonSchema({"type": "string", "pattern": MONTH_PATTERN, "description": "YYYY-MM", "examples": ["2026-03"]}),
]

# a calendar day: `2026-03-31`
Day = Annotated[
    date,
    PlainValidator(parse_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN, "examples": ["2026-03-31"]}),
]

Year = Annotated[int, Field(ge=EARLIEST_YEAR, le=LATEST_YEAR)]


def _period(value: object) -> str:
    """`2026`, `2026-03` or `2026-03-31`, each checked as a year, a month or a day is."""
    if isinstance(value, str) and len(value) == 4 and value.isdigit():
        problem = year_problem(int(value))
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, str) and len(value) == 7:
        parse_month(value)
    else:
        parse_day(value)
    return str(value)


# a period a limit counts in: a year, a month or a day, as text (`2026`, `2026-03`, `2026-03-31`)
Period = Annotated[
    str,
    PlainValidator(_period),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"{YEAR_PATTERN}|{MONTH_PATTERN}|{DAY_PATTERN}",
            "description": "a year, a month or a day: YYYY, YYYY-MM or YYYY-MM-DD",
            "examples": ["2026", "2026-03", "2026-03-31"],
        }
    ),
]


def _in_years(value: datetime) -> datetime:
    problem = year_problem(value.year)
    if problem is not None:
        raise ValueError(problem)
    return value


# a time with its offset (RFC 3339), in the years a month or a day may name
Instant = Annotated[AwareDatetime, AfterValidator(_in_years)]


def months_between(first: date, last: date, *, longest: int, field: str) -> tuple[date, date]:
    """A period of months that a service answers for: 422 naming `field` (its end) when it is reversed or longer
    than `longest` months."""
    problem = period_problem(first, last, longest)
    if problem is not None:
        raise InvalidInputError(field, problem)
    return first, last
