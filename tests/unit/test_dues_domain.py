"""Dues rules as deciders: the ledger, check-off matching, the six-month case, policies that never rewrite the past."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.dues import domain
from services.dues.domain import Account, CheckoffLine
from services.dues.events import (
    ArrearsCaseClosed,
    ArrearsCaseOpened,
    DuesAccountOpened,
    DuesAssessed,
    DuesPaid,
    LapseDecided,
)
from services.dues.policy import DEFAULT, Policy, Rounding, dues_for, in_force, validate
from shared.errors import DomainError, InvalidInputError
from shared.events import DomainEvent

ORG = uuid.uuid4()
OTHER_ORG = uuid.uuid4()


def opened(member_no: str = "310115-00000001", on: date = date(2025, 1, 10)) -> tuple[uuid.UUID, list[DomainEvent]]:
    member_id = uuid.uuid4()
    events: list[DomainEvent] = [
        DuesAccountOpened(member_id=member_id, member_no=member_no, org_id=ORG, joined_at=on, opened_on=on)
    ]
    account = domain.fold(events)
    events += domain.declare_wage_base(account, member_id, Decimal("4567.89"), date(2025, 1, 1), "staff")
    return member_id, events


def account_of(events: list[DomainEvent]) -> Account:
    state = domain.fold(events)
    assert state is not None
    return state


def run(events: list[DomainEvent], new: list[DomainEvent]) -> list[DomainEvent]:
    events.extend(new)
    return new


def test_dues_are_half_a_percent_of_the_base_without_the_remainder_under_ten_yuan() -> None:
    assert dues_for(DEFAULT, Decimal("4567.89")) == Decimal("22.80")  # 4560 x 0.5%
    assert dues_for(DEFAULT, Decimal("9.99")) == Decimal("0.00")
    assert dues_for(Policy(date(2027, 1, 1), rounding=Rounding.YUAN), Decimal("4567.89")) == Decimal(23)


def test_each_month_is_assessed_under_the_policy_in_force_for_it() -> None:
    _, events = opened()
    raised = Policy(date(2025, 3, 1), rate=Decimal("0.01"), recorded_at=datetime(2025, 2, 1, tzinfo=UTC))
    run(events, domain.assess(account_of(events), [raised], date(2025, 4, 5)))
    lines = account_of(events).lines
    assert [lines[m].expected for m in sorted(lines)] == [Decimal("22.80")] * 2 + [Decimal("45.60")] * 2


def test_a_rate_change_leaves_last_years_figures_as_they_were() -> None:
    _, events = opened()
    policies: list[Policy] = []
    run(events, domain.assess(account_of(events), policies, date(2025, 12, 20)))
    last_year = {m: (line.expected, line.arrears) for m, line in account_of(events).lines.items()}
    change = Policy(date(2026, 1, 1), rate=Decimal("0.008"), recorded_at=datetime(2025, 12, 20, tzinfo=UTC))
    validate(change, date(2025, 12, 20))
    policies.append(change)
    run(events, domain.assess(account_of(events), policies, date(2026, 2, 1)))
    after = account_of(events).lines
    assert {m: (after[m].expected, after[m].arrears) for m in last_year} == last_year
    assert after[date(2026, 1, 1)].expected == Decimal("36.48")


def test_a_policy_never_takes_effect_in_a_month_that_has_begun() -> None:
    with pytest.raises(DomainError) as refused:
        validate(Policy(date(2025, 12, 1)), date(2025, 12, 20))
    assert refused.value.code == "policy_retroactive"
    with pytest.raises(InvalidInputError):
        validate(Policy(date(2026, 1, 15)), date(2025, 12, 20))


def test_of_two_policies_for_one_month_the_later_set_is_in_force() -> None:
    first = Policy(date(2026, 1, 1), rate=Decimal("0.006"), recorded_at=datetime(2025, 11, 1, tzinfo=UTC))
    second = Policy(date(2026, 1, 1), rate=Decimal("0.007"), recorded_at=datetime(2025, 12, 1, tzinfo=UTC))
    assert in_force([first, second], date(2026, 3, 1)).rate == Decimal("0.007")
    assert in_force([first, second], date(2025, 12, 1)) is DEFAULT


def test_retained_and_exempt_months_owe_nothing() -> None:
    member_id, events = opened()
    run(events, domain.follow_status(account_of(events), member_id, domain.RETAINED, ORG, date(2025, 3, 1)))
    run(events, domain.follow_status(account_of(events), member_id, domain.ACTIVE, OTHER_ORG, date(2025, 5, 1)))
    run(
        events,
        domain.exempt(account_of(events), member_id, date(2025, 6, 1), date(2025, 6, 1), "illness", date(2025, 5, 2)),
    )
    run(events, domain.assess(account_of(events), [], date(2025, 7, 1)))
    lines = account_of(events).lines
    assert [lines[m].state for m in sorted(lines)] == [
        "unpaid",
        "unpaid",
        "retained",
        "retained",
        "unpaid",
        "exempt",
        "unpaid",
    ]
    assert account_of(events).arrears() == Decimal("22.80") * 4
    assert lines[date(2025, 5, 1)].expected == Decimal("22.80")


def test_a_member_reaching_six_unpaid_months_gets_a_case_then_education_then_staff_decide_the_lapse() -> None:
    member_id, events = opened()
    case_id = uuid.uuid4()
    # five whole months unpaid by the review of June: no case yet
    assert not [
        e
        for e in run(events, domain.review(account_of(events), [], date(2025, 6, 1), case_id))
        if isinstance(e, ArrearsCaseOpened)
    ]
    opened_case = [
        e
        for e in run(events, domain.review(account_of(events), [], date(2025, 7, 1), case_id))
        if isinstance(e, ArrearsCaseOpened)
    ]
    assert [c.unpaid_months for c in opened_case] == [[date(2025, m, 1) for m in range(1, 7)]]
    assert domain.review(account_of(events), [], date(2025, 7, 2), uuid.uuid4()) == []  # one case at a time
    with pytest.raises(DomainError) as early:
        domain.decide_lapse(account_of(events), member_id, case_id, "staff", "arrears", True, date(2025, 7, 3))
    assert early.value.code == "education_missing"
    run(
        events,
        domain.record_education(
            account_of(events), member_id, case_id, date(2025, 7, 5), "Clerk Wang", "visited", [], date(2025, 7, 6)
        ),
    )
    assert account_of(events).case is not None
    assert account_of(events).case.grace_until == date(2025, 8, 4)  # type: ignore[union-attr]
    with pytest.raises(DomainError) as waiting:
        domain.decide_lapse(account_of(events), member_id, case_id, "staff", "arrears", True, date(2025, 8, 4))
    assert waiting.value.code == "grace_period_running"
    with pytest.raises(DomainError) as active_in_union:
        domain.decide_lapse(account_of(events), member_id, case_id, "staff", "arrears", False, date(2025, 8, 5))
    assert active_in_union.value.code == "takes_part_in_union_life"
    decided = run(
        events, domain.decide_lapse(account_of(events), member_id, case_id, "staff", "arrears", True, date(2025, 8, 5))
    )
    assert [type(e) for e in decided] == [LapseDecided, ArrearsCaseClosed]
    assert account_of(events).case is None
    assert account_of(events).status == domain.ACTIVE  # membership decides the status
    run(events, domain.follow_status(account_of(events), member_id, domain.LAPSED, ORG, date(2025, 8, 6)))
    assert domain.assess(account_of(events), [], date(2025, 12, 1))[-1].reason == "ended"


def test_any_payment_closes_the_case() -> None:
    member_id, events = opened()
    case_id = uuid.uuid4()
    run(events, domain.review(account_of(events), [], date(2025, 7, 1), case_id))
    paid = run(
        events,
        domain.pay(account_of(events), member_id, date(2025, 2, 1), Decimal(5), "online", "p-1", [], date(2025, 7, 9)),
    )
    assert [type(e) for e in paid] == [DuesPaid, ArrearsCaseClosed]
    assert account_of(events).case is None
    assert account_of(events).lines[date(2025, 2, 1)].state == "partial"
    # the run is broken by the payment: the next review opens nothing
    assert domain.review(account_of(events), [], date(2025, 8, 1), uuid.uuid4())[-1].month == date(2025, 8, 1)  # type: ignore[attr-defined]


def test_retirement_closes_an_open_case_and_stops_the_dues() -> None:
    member_id, events = opened()
    run(events, domain.review(account_of(events), [], date(2025, 7, 1), uuid.uuid4()))
    closed = run(events, domain.follow_status(account_of(events), member_id, domain.RETAINED, ORG, date(2025, 7, 2)))
    assert isinstance(closed[-1], ArrearsCaseClosed)
    assert closed[-1].reason == "retained"
    assessed = domain.assess(account_of(events), [], date(2025, 9, 1))
    assert [(a.liable, a.reason) for a in assessed] == [(False, "retained"), (False, "retained")]


def test_an_exemption_covering_the_case_closes_it() -> None:
    member_id, events = opened()
    run(events, domain.review(account_of(events), [], date(2025, 7, 1), uuid.uuid4()))
    out = domain.exempt(account_of(events), member_id, date(2025, 1, 1), date(2025, 6, 1), "hospital", date(2025, 7, 3))
    assert isinstance(out[-1], ArrearsCaseClosed)
    assert out[-1].reason == "exempted"


def test_a_checkoff_file_with_matched_unmatched_and_partial_lines() -> None:
    _, a = opened("A")
    _, b = opened("B")
    c_id, c = opened("C")
    c.append(domain.MemberStatusFollowed(member_id=c_id, status="active", org_id=OTHER_ORG, on=date(2025, 2, 1)))
    accounts = {"A": account_of(a), "B": account_of(b), "C": account_of(c)}
    month = date(2025, 3, 1)
    lines = [
        CheckoffLine(2, "A", Decimal("22.80")),
        CheckoffLine(3, "B", Decimal("10.00")),
        CheckoffLine(4, "C", Decimal("22.80")),
        CheckoffLine(5, "Z", Decimal("22.80")),
    ]
    matched, unmatched, already = domain.match_checkoff(
        ORG, month, lines, accounts, frozenset({ORG}), [], date(2025, 3, 25)
    )
    assert [(m.line.member_no, m.partial) for m in matched] == [("A", False), ("B", True)]
    assert [(u.line.line_no, u.reason) for u in unmatched] == [
        (4, "the member is not held by this organisation or below it"),
        (5, "no member with this number"),
    ]
    assert already == 0
    after_a = domain.fold_onto(accounts["A"], matched[0].events)
    assert [after_a.lines[m].state for m in sorted(after_a.lines)] == ["unpaid", "unpaid", "paid"]
    after_b = domain.fold_onto(accounts["B"], matched[1].events)
    assert after_b.lines[month].arrears == Decimal("12.80")
    # a re-run applies only what is missing
    again, _, already = domain.match_checkoff(
        ORG, month, lines[:1], {"A": after_a}, frozenset({ORG}), [], date(2025, 3, 26)
    )
    assert (again, already) == ([], 1)


def test_payments_are_for_months_that_began_and_the_ledger_holds() -> None:
    member_id, events = opened()
    with pytest.raises(InvalidInputError):
        domain.pay(account_of(events), member_id, date(2025, 9, 1), Decimal(1), "online", "x", [], date(2025, 8, 1))
    with pytest.raises(DomainError) as before:
        domain.pay(account_of(events), member_id, date(2024, 12, 1), Decimal(1), "online", "x", [], date(2025, 8, 1))
    assert before.value.code == "month_before_account"


def test_state_as_of_a_past_date_is_the_same_before_and_after_a_policy_change() -> None:
    """The ledger as of a date is the fold of what was recorded by then, under the policies set by then; a policy
    set later takes effect only from a month that had not begun, so nothing as of the past date moves."""
    _, events = opened()
    run(events, domain.review(account_of(events), [], date(2025, 7, 1), uuid.uuid4()))
    as_of = date(2025, 7, 15)

    def view(policies: list[Policy]) -> dict[date, tuple[str, object, object]]:
        account = account_of(events)
        projected = domain.fold_onto(account, domain.assess(account, policies, as_of))
        return {m: (line.state, line.expected, line.arrears) for m, line in projected.lines.items()}

    before = view([])
    change = Policy(
        date(2025, 8, 1), rate=Decimal("0.02"), unpaid_months=3, recorded_at=datetime(2025, 7, 20, tzinfo=UTC)
    )
    validate(change, date(2025, 7, 20))
    assert view([change]) == before
    assert isinstance(domain.assess(account_of(events), [change], date(2025, 8, 2))[0], DuesAssessed)
    assert domain.assess(account_of(events), [change], date(2025, 8, 2))[0].amount == Decimal("91.20")


def test_a_checkoff_batch_is_appended_kind_after_kind_each_accounts_events_in_order() -> None:
    """The read models take a kind at a time set-wise; no account's events change order (checkoff.kind_by_kind)."""
    from services.dues.checkoff import kind_by_kind  # noqa: PLC0415
    from shared.store import Stream  # noqa: PLC0415

    today = date(2025, 3, 5)
    batch = []
    for n in range(3):
        member_id, events = opened(f"M-{n}", date(2025, 1, 10))
        account = account_of(events)
        paid = domain.pay(account, member_id, date(2025, 3, 1), Decimal(5), "checkoff", f"r{n}", [DEFAULT], today)
        batch.append((Stream(f"dues-{member_id}"), paid))
    odd = [batch[0][1][-1], batch[0][1][0]]  # a payment before an assessment: kept whole, last
    batch.append((Stream("dues-odd"), odd))
    ordered = kind_by_kind(batch)
    kinds = [type(e).__name__ for _, events in ordered for e in events]
    assert kinds == ["DuesAssessed"] * 9 + ["DuesPaid"] * 3 + ["DuesPaid", "DuesAssessed"]  # three months each
    for stream, events in batch:
        assert [e for s, es in ordered if s is stream for e in es] == list(events)
