"""How the console shows a working-day deadline: the calendar it was counted on, and 暂定 where it is provisional."""

from __future__ import annotations

from services.console.web import templates

PROVISIONAL = {
    "deadline": "2027-01-11T16:00:00Z",
    "provisional": True,
    "clock": {
        "working_days": 15,
        "provisional": True,
        "counted_on": [{"year": 2026, "notice": "国办发明电〔2025〕7号"}, {"year": 2027, "notice": None}],
    },
}


def render(item: dict[str, object]) -> str:
    return str(templates.env.get_template("deadline.html").module.deadline(item))  # type: ignore[attr-defined]


def test_a_provisional_deadline_says_so_and_why() -> None:
    html = render(PROVISIONAL)
    assert "2027-01-12" in html  # 24:00 China Standard Time of the 11th is shown as the day it ends on
    assert 'data-testid="provisional"' in html
    assert "暂定" in html
    assert "2026年按国办发明电〔2025〕7号" in html
    assert "2027年放假安排未公布，暂按法定节假日计算" in html


def test_a_deadline_on_the_notices_names_them_and_is_not_marked() -> None:
    counted = {"year": 2027, "notice": "国办发明电〔2026〕1号"}
    item = {
        **PROVISIONAL,
        "provisional": False,
        "clock": {"provisional": False, "counted_on": [counted]},
    }
    html = render(item)
    assert "暂定" not in html
    assert "2027年按国办发明电〔2026〕1号" in html


def test_a_clock_that_ran_out_before_the_notice_says_it_is_not_counted_again() -> None:
    late = {"year": 2027, "notice": None, "published_after": "国办发明电〔2026〕1号"}
    html = render({**PROVISIONAL, "clock": {"provisional": True, "counted_on": [late]}})
    assert "暂定" in html
    assert "期限届满后才公布国办发明电〔2026〕1号，不再重算" in html
    assert "公布后重新计算" not in html


def test_a_transfer_has_calendar_days_and_no_calendar_shown() -> None:
    html = render({"deadline": "2027-01-11T16:00:00Z", "provisional": False, "clock": None})
    assert "2027-01-12" in html
    assert 'data-testid="deadline-calendar"' not in html
