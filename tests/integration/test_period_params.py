"""Months, dates and periods a client sends: year 0, month 13, a day that does not exist, a period that ends before
it begins or is longer than the service answers for are each a 422 naming the field and the reason (issue 33: the
dues report answered 500 to year 0). One rule, shared.web.params, for every service."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_dues import dues  # noqa: F401 - the dues service in this process
from tests.integration.test_servicecard import servicecard, servicecard_settings  # noqa: F401 - likewise

ORG = uuid.uuid4()
MEMBER = uuid.uuid4()


def refusals(body: dict[str, object]) -> list[tuple[str, str]]:
    """Each field at fault, with its reason."""
    assert body["code"] == "invalid_input"
    errors = body["errors"]
    assert isinstance(errors, list)
    return [(e["field"], e["reason"]) for e in errors]


@pytest.mark.parametrize(
    ("first", "last", "field", "reason"),
    [
        ("0000-01", "0000-01", "query.first", "year 0000 is outside the years kept here (1900 to 2199)"),
        ("2026-01", "9999-12", "query.last", "year 9999 is outside the years kept here (1900 to 2199)"),
        ("2026-13", "2026-12", "query.first", "month 13 does not exist: months are 01 to 12"),
        ("2026-00", "2026-12", "query.first", "month 00 does not exist: months are 01 to 12"),
        ("2026-1", "2026-12", "query.first", "a month is written YYYY-MM, e.g. 2026-03"),
        ("2026-06", "2026-01", "query.last", "the period ends (2026-01) before it begins (2026-06)"),
        ("2000-01", "2026-12", "query.last", "a period is at most 120 months; 2000-01 to 2026-12 is 324"),
    ],
)
async def test_the_dues_report_refuses_a_month_or_period_that_is_no_such_thing(
    dues: ServiceUnderTest,  # noqa: F811
    first: str,
    last: str,
    field: str,
    reason: str,
) -> None:
    r = await dues.get(f"/organizations/{ORG}/dues/report", params={"first": first, "last": last})
    assert r.status_code == 422, r.text
    assert (field, reason) in refusals(r.json())


async def test_a_report_of_ten_years_to_the_month_is_answered(dues: ServiceUnderTest) -> None:  # noqa: F811
    r = await dues.get(f"/organizations/{ORG}/dues/report", params={"first": "2017-01", "last": "2026-12"})
    assert r.status_code != 422, r.text  # 404 or 200: the organisation is unknown here, the period is fine


async def test_months_and_dates_in_bodies_and_queries_give_the_same_reasons(
    dues: ServiceUnderTest,  # noqa: F811
) -> None:
    r = await dues.post(f"/members/{MEMBER}/dues/payments", {"month": "0000-01", "amount": "1.00"})
    assert r.status_code == 422, r.text
    assert refusals(r.json()) == [("month", "year 0000 is outside the years kept here (1900 to 2199)")]
    r = await dues.post(
        f"/members/{MEMBER}/dues/exemptions", {"from_month": "2026-01", "to_month": "2026-13", "reason": "ill"}
    )
    assert refusals(r.json()) == [("to_month", "month 13 does not exist: months are 01 to 12")]
    r = await dues.get(f"/organizations/{ORG}/members-by-status", params={"as_of": "2026-02-30"})
    assert r.status_code == 422, r.text
    assert refusals(r.json()) == [("query.as_of", "day 30 does not exist in 2026-02")]
    r = await dues.get(f"/organizations/{ORG}/members-by-status", params={"as_of": "0000-01-01"})
    assert refusals(r.json()) == [("query.as_of", "year 0000 is outside the years kept here (1900 to 2199)")]
    r = await dues.get(f"/members/{MEMBER}/dues", params={"as_of": "0001-01-01T00:00:00+14:00"})
    assert refusals(r.json()) == [("query.as_of", "year 0001 is outside the years kept here (1900 to 2199)")]


async def test_the_card_services_months_and_periods_follow_the_same_rule(
    servicecard: ServiceUnderTest,  # noqa: F811
) -> None:
    r = await servicecard.get("/stats/usage", params={"month": "0000-01"})
    assert refusals(r.json()) == [("query.month", "year 0000 is outside the years kept here (1900 to 2199)")]
    r = await servicecard.get("/stats/usage", params={"month": "2026-13"})
    assert refusals(r.json()) == [("query.month", "month 13 does not exist: months are 01 to 12")]
    assert (await servicecard.get("/stats/usage", params={"month": "2026-03"})).status_code == 200
    allocation = {
        "item_id": str(uuid.uuid4()),
        "org_id": str(ORG),
        "title": "疗休养",
        "mode": "draw",
        "places": 1,
        "entries_close_at": "2027-01-01T00:00:00+08:00",
    }
    for period, reason in [
        ("0000", "year 0000 is outside the years kept here (1900 to 2199)"),
        ("2026-13", "month 13 does not exist: months are 01 to 12"),
        ("2026-02-30", "day 30 does not exist in 2026-02"),
    ]:
        r = await servicecard.post("/allocations", {**allocation, "period": period})
        assert refusals(r.json()) == [("period", reason)], period
