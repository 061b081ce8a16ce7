"""An application's clock: given its events, when the clock is looked at, then ApplicationOverdue once or nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from services.membership import domain
from services.membership.events import ApplicationApproved, ApplicationOverdue, ApplicationSubmitted, DeadlineRecounted
from shared.workdays import CST, Clock, YearBasis
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


def test_a_provisional_clock_counted_again_moves_only_while_it_runs() -> None:
    app = pending()
    app = domain.evolve(app, submitted_with(app, DUE))
    assert isinstance(app, domain.Application)
    later = replace(CLOCK, deadline=DUE + timedelta(days=1))
    [moved] = domain.recount_deadline(app, later, "国办发明电〔2026〕1号", DUE - timedelta(days=1))
    assert isinstance(moved, DeadlineRecounted)
    assert (moved.previous_deadline, moved.deadline, moved.notice) == (DUE, later.deadline, "国办发明电〔2026〕1号")
    assert domain.recount_deadline(app, CLOCK, "n", DUE - timedelta(days=1)) == []  # the same deadline: nothing
    assert domain.recount_deadline(app, later, "n", DUE) == []  # already run out: never moved
    overdue = domain.evolve(app, domain.mark_overdue(app, DUE, DUE, PARENT)[0])
    assert isinstance(overdue, domain.Application)
    assert domain.recount_deadline(overdue, later, "n", DUE - timedelta(days=1)) == []


CLOCK = Clock(datetime(2025, 9, 26, 16, 30, tzinfo=CST), DUE, 15, (YearBasis(2025, None),))


def submitted_with(app: domain.Application, respond_by: datetime) -> ApplicationSubmitted:
    return app.submitted.model_copy(update={"respond_by": respond_by})
