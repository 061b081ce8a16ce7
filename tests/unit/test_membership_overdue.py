"""An application's clock: given its events, when the clock is looked at, then ApplicationOverdue once or nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from services.membership import domain
from services.membership.events import ApplicationApproved, ApplicationOverdue
from services.membership.handlers import respond_by
from shared.workdays import CST
from tests.unit.test_membership_domain import submitted

DUE = datetime(2025, 10, 24, tzinfo=CST)  # 15 working days from Friday 26 September 2025
PARENT = uuid.uuid4()


def pending() -> domain.Application:
    state = domain.fold([submitted(uuid.uuid4())])
    assert isinstance(state, domain.Application)
    return state


def test_before_its_clock_runs_out_nothing_happens() -> None:
    assert domain.mark_overdue(pending(), DUE, DUE - timedelta(seconds=1), PARENT) == []


def test_when_it_runs_out_the_application_goes_to_the_parent_once() -> None:
    app = pending()
    [event] = domain.mark_overdue(app, DUE, DUE, PARENT)
    assert isinstance(event, ApplicationOverdue)
    assert (event.application_id, event.org_id, event.escalated_to_org_id) == (app.application_id, app.org_id, PARENT)
    later = domain.evolve(app, event)
    assert isinstance(later, domain.Application)
    assert later.overdue
    assert domain.mark_overdue(later, DUE, DUE + timedelta(days=3), PARENT) == []


def test_a_reviewed_application_has_no_clock() -> None:
    app = pending()
    approved = ApplicationApproved(
        application_id=app.application_id, member_id=app.member_id, member_no="x", org_id=app.org_id, reviewer="r"
    )
    reviewed = domain.evolve(app, approved)
    assert isinstance(reviewed, domain.Application)
    assert domain.mark_overdue(reviewed, DUE, DUE + timedelta(days=3), PARENT) == []


def test_an_application_in_a_year_the_calendar_does_not_know_is_accepted_without_a_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert respond_by(datetime(2099, 12, 20, 10, tzinfo=CST), 15) is None
    assert "2099" in caplog.text
    assert respond_by(datetime(2025, 9, 26, 10, tzinfo=CST), 15) == DUE
