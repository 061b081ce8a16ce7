"""Dues rules as deciders: a member's dues account (a ledger per month, the six-month case) and check-off matching.

Pure: state is folded from the account's events; policies come in as data (services.dues.policy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from services.dues.events import (
    ArrearsCaseClosed,
    ArrearsCaseOpened,
    ArrearsEducationRecorded,
    DuesAccountOpened,
    DuesAssessed,
    DuesExempted,
    DuesPaid,
    LapseDecided,
    MemberStatusFollowed,
    WageBaseDeclared,
)
from services.dues.policy import Policy, add_months, dues_for, in_force, month_of, months
from shared.errors import DomainError, InvalidInputError
from shared.events import DomainEvent

ACTIVE, SUSPENDED, RETAINED, LAPSED, TERMINATED = "active", "suspended", "retained", "lapsed", "terminated"
ENDED = frozenset({LAPSED, TERMINATED})
# 保留会籍期间免交会费: retained members pay no dues (会员会籍管理办法 2016, 会籍保留; 北京 2020 实施办法)
NOT_LIABLE = frozenset({RETAINED})


@dataclass(frozen=True)
class Line:
    """One month of the ledger."""

    month: date
    liable: bool
    reason: str | None
    expected: Decimal | None  # None: no wage base known when it was assessed
    paid: Decimal = Decimal(0)
    exempt: bool = False

    @property
    def owed(self) -> bool:
        return self.liable and not self.exempt

    @property
    def arrears(self) -> Decimal:
        if not self.owed or self.expected is None:
            return Decimal(0)
        return max(self.expected - self.paid, Decimal(0))

    @property
    def state(self) -> str:
        if not self.owed:
            return "exempt" if self.exempt else (self.reason or "not_liable")
        if self.expected is not None and self.paid >= self.expected:
            return "paid"
        return "partial" if self.paid > 0 else "unpaid"


@dataclass(frozen=True)
class Case:
    case_id: UUID
    opened_on: date
    unpaid_months: tuple[date, ...]
    educated_on: date | None = None
    grace_until: date | None = None


@dataclass(frozen=True)
class Account:
    member_id: UUID
    member_no: str
    org_id: UUID
    joined_at: date
    opened_on: date
    statuses: tuple[tuple[date, str], ...]  # (since, status), in order
    bases: tuple[tuple[date, Decimal], ...] = ()  # (from month, monthly base), in the order declared
    lines: Mapping[date, Line] = field(default_factory=dict)
    exemptions: tuple[tuple[date, date, str], ...] = ()
    case: Case | None = None
    payment_refs: frozenset[str] = frozenset()

    @property
    def status(self) -> str:
        return self.statuses[-1][1]

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def status_on(self, day: date) -> str:
        current = self.statuses[0][1]
        for since, status in self.statuses:
            if since <= day:
                current = status
        return current

    def base_for(self, month: date) -> Decimal | None:
        found: tuple[date, Decimal] | None = None
        for start, base in self.bases:  # the latest declaration covering the month wins
            if start <= month and (found is None or start >= found[0]):
                found = (start, base)
        return found[1] if found else None

    def exempt_in(self, month: date) -> str | None:
        for start, end, reason in self.exemptions:
            if start <= month <= end:
                return reason
        return None

    def unpaid_run(self, before: date) -> list[date]:
        """The trailing run of months before `before` that were owed and got no payment at all (months not owed,
        retained or exempt, neither count nor break the run; any payment breaks it)."""
        run: list[date] = []
        for month in sorted((m for m in self.lines if m < before), reverse=True):
            line = self.lines[month]
            if not line.owed:
                continue
            if line.paid > 0:
                break
            run.append(month)
        return sorted(run)

    def arrears(self) -> Decimal:
        return sum((line.arrears for line in self.lines.values()), Decimal(0))


# --- evolve --------------------------------------------------------------------------------------------


def evolve(state: Account | None, event: DomainEvent) -> Account | None:  # noqa: C901, PLR0911 - one arm per event
    match event:
        case DuesAccountOpened():
            return Account(
                event.member_id,
                event.member_no,
                event.org_id,
                event.joined_at,
                event.opened_on,
                ((event.joined_at, ACTIVE),),
            )
    if state is None:
        return None
    match event:
        case MemberStatusFollowed():
            return replace(state, org_id=event.org_id, statuses=(*state.statuses, (event.on, event.status)))
        case WageBaseDeclared():
            return replace(state, bases=(*state.bases, (event.from_month, event.monthly_base)))
        case DuesAssessed():
            line = Line(event.month, event.liable, event.reason, event.amount, exempt=event.reason == "exempt")
            return replace(state, lines={**state.lines, event.month: line})
        case DuesPaid():
            line = state.lines[event.month]
            return replace(
                state,
                lines={**state.lines, event.month: replace(line, paid=line.paid + event.amount)},
                payment_refs=state.payment_refs | {event.payment_ref},
            )
        case DuesExempted():
            lines = {
                m: replace(line, exempt=True) if event.from_month <= m <= event.to_month else line
                for m, line in state.lines.items()
            }
            return replace(
                state, lines=lines, exemptions=(*state.exemptions, (event.from_month, event.to_month, event.reason))
            )
        case ArrearsCaseOpened():
            return replace(state, case=Case(event.case_id, event.opened_on, tuple(event.unpaid_months)))
        case ArrearsEducationRecorded() if state.case is not None:
            return replace(
                state, case=replace(state.case, educated_on=event.contacted_on, grace_until=event.grace_until)
            )
        case ArrearsCaseClosed():
            return replace(state, case=None)
    return state


def fold(events: Iterable[DomainEvent]) -> Account | None:
    state: Account | None = None
    for event in events:
        state = evolve(state, event)
    return state


def _account(state: Account | None, member_id: UUID) -> Account:
    if state is None:
        raise DomainError("no_dues_account", f"member {member_id} has no dues account (not a member, or not yet seen)")
    return state


# --- deciders ------------------------------------------------------------------------------------------


def open_account(
    state: Account | None, member_id: UUID, member_no: str, org_id: UUID, joined_at: date, today: date
) -> list[DomainEvent]:
    if state is not None:
        return []  # a redelivered join
    # an imported member who joined years ago owes from the month the platform learned of them, not from then
    opened = max(joined_at, today)
    return [
        DuesAccountOpened(
            member_id=member_id, member_no=member_no, org_id=org_id, joined_at=joined_at, opened_on=opened
        )
    ]


def follow_status(state: Account | None, member_id: UUID, status: str, org_id: UUID, on: date) -> list[DomainEvent]:
    """Membership's status or organisation changed. A case closes when the member is retained or the membership
    ends (nothing left to decide)."""
    if state is None:
        return []
    if state.status == status and state.org_id == org_id:
        return []
    events: list[DomainEvent] = [MemberStatusFollowed(member_id=member_id, status=status, org_id=org_id, on=on)]
    if state.case is not None and (status in NOT_LIABLE or status in ENDED):
        reason = "retained" if status in NOT_LIABLE else status
        events.append(
            ArrearsCaseClosed(
                case_id=state.case.case_id, member_id=member_id, org_id=org_id, reason=reason, closed_on=on
            )
        )
    return events


def declare_wage_base(
    state: Account | None, member_id: UUID, base: Decimal, from_month: date, source: str
) -> list[DomainEvent]:
    account = _account(state, member_id)
    if base < 0:
        raise InvalidInputError("monthly_base", "a wage base is not negative")
    if from_month.day != 1:
        raise InvalidInputError("from_month", "a wage base applies from the first day of a month")
    if account.base_for(from_month) == base:
        return []
    return [WageBaseDeclared(member_id=member_id, monthly_base=base, from_month=from_month, source=source)]


def _assess(account: Account, month: date, policy: Policy) -> DuesAssessed:
    day = max(month, account.opened_on)
    status = account.status_on(day)
    base = account.base_for(month)
    common = {
        "member_id": account.member_id,
        "org_id": account.org_id,
        "month": month,
        "policy_from": policy.effective_from,
    }
    if status in ENDED:
        return DuesAssessed(**common, liable=False, reason="ended")
    if status in NOT_LIABLE:
        return DuesAssessed(**common, liable=False, reason=status)
    if account.exempt_in(month) is not None:
        return DuesAssessed(**common, liable=False, reason="exempt")
    amount = dues_for(policy, base) if base is not None else None
    return DuesAssessed(**common, liable=True, wage_base=base, rate=policy.rate, amount=amount)


def assess(state: Account, policies: Sequence[Policy], today: date) -> list[DuesAssessed]:
    """Every month from the account's first through today's not assessed yet, each under the policy in force for
    it. Once assessed, a month's figure stands: a later policy or wage base never changes it."""
    if state.ended and state.lines:
        last = max(state.lines)
        if state.lines[last].reason == "ended":
            return []
    out: list[DuesAssessed] = []
    for month in months(state.opened_on, month_of(today)):
        if month in state.lines:
            continue
        line = _assess(state, month, in_force(policies, month))
        out.append(line)
        if line.reason == "ended":
            break
    return out


def review(state: Account, policies: Sequence[Policy], today: date, case_id: UUID) -> list[DomainEvent]:
    """The monthly look: assess what is due, and open a case when the member has paid nothing for the policy's
    number of consecutive months (months before this one). Never an end of membership: a case for staff."""
    assessed = assess(state, policies, today)
    events: list[DomainEvent] = list(assessed)
    after = state
    for event in assessed:
        after = evolve(after, event) or after
    if after.case is not None or after.ended or after.status in NOT_LIABLE:
        return events
    this_month = month_of(today)
    run = after.unpaid_run(before=this_month)
    threshold = in_force(policies, add_months(this_month, -1)).unpaid_months
    if len(run) >= threshold:
        events.append(
            ArrearsCaseOpened(
                case_id=case_id,
                member_id=state.member_id,
                org_id=after.org_id,
                unpaid_months=run,
                opened_on=today,
                threshold=threshold,
            )
        )
    return events


def pay(
    state: Account | None,
    member_id: UUID,
    month: date,
    amount: Decimal,
    channel: str,
    payment_ref: str,
    policies: Sequence[Policy],
    today: date,
) -> list[DomainEvent]:
    """A payment for a month (assessed first if it is not yet). Any payment closes an open case."""
    account = _account(state, member_id)
    if payment_ref in account.payment_refs:
        return []  # already applied: a re-run or a retry
    if amount <= 0:
        raise InvalidInputError("amount", "a payment is a positive amount")
    if month_of(month) != month:
        raise InvalidInputError("month", "a month is given by its first day")
    if month > month_of(today):
        raise InvalidInputError("month", "dues are paid for months that have begun")
    if month < month_of(account.opened_on):
        raise DomainError("month_before_account", f"the member's dues ledger begins in {month_of(account.opened_on)}")
    events: list[DomainEvent] = []
    if month not in account.lines:
        events += assess(account, policies, month)
    events.append(
        DuesPaid(
            member_id=member_id,
            org_id=account.org_id,
            month=month,
            amount=amount,
            paid_by=channel,
            payment_ref=payment_ref,
            paid_on=today,
        )
    )
    if account.case is not None:
        events.append(
            ArrearsCaseClosed(
                case_id=account.case.case_id, member_id=member_id, org_id=account.org_id, reason="paid", closed_on=today
            )
        )
    return events


def exempt(
    state: Account | None, member_id: UUID, from_month: date, to_month: date, reason: str, today: date
) -> list[DomainEvent]:
    """Staff exempt a member for a period with a reason (good reason, 正当理由): those months are owed nothing.
    An open case whose months the exemption covers closes."""
    account = _account(state, member_id)
    if from_month.day != 1 or to_month.day != 1:
        raise InvalidInputError("from_month", "an exemption runs from the first day of a month to the first of another")
    if to_month < from_month:
        raise InvalidInputError("to_month", "an exemption ends on or after it begins")
    events: list[DomainEvent] = [
        DuesExempted(member_id=member_id, from_month=from_month, to_month=to_month, reason=reason)
    ]
    case = account.case
    if case is not None and any(from_month <= m <= to_month for m in case.unpaid_months):
        events.append(
            ArrearsCaseClosed(
                case_id=case.case_id, member_id=member_id, org_id=account.org_id, reason="exempted", closed_on=today
            )
        )
    return events


def record_education(
    state: Account | None,
    member_id: UUID,
    case_id: UUID,
    contacted_on: date,
    by: str,
    note: str,
    policies: Sequence[Policy],
    today: date,
) -> list[DomainEvent]:
    """Staff record the education contact (经教育); the grace period of the policy in force runs from it."""
    account = _account(state, member_id)
    case = _open_case(account, case_id)
    if contacted_on > today:
        raise InvalidInputError("contacted_on", "a contact is recorded once it happened")
    if contacted_on < case.opened_on:
        raise InvalidInputError("contacted_on", "the contact follows the case's opening")
    grace = in_force(policies, month_of(contacted_on)).grace_days
    return [
        ArrearsEducationRecorded(
            case_id=case_id,
            member_id=member_id,
            org_id=account.org_id,
            contacted_on=contacted_on,
            by=by,
            note=note,
            grace_until=contacted_on + timedelta(days=grace),
        )
    ]


def decide_lapse(
    state: Account | None,
    member_id: UUID,
    case_id: UUID,
    by: str,
    reason: str,
    no_part_in_union_life: bool,
    today: date,
) -> list[DomainEvent]:
    """Only staff, only after education and once the grace period is over, and only when the member also took no
    part in union life: the membership is regarded as withdrawn. Membership records the lapse."""
    account = _account(state, member_id)
    case = _open_case(account, case_id)
    if case.educated_on is None or case.grace_until is None:
        raise DomainError("education_missing", "record the education contact first (经教育拒不改正)")
    if today <= case.grace_until:
        raise DomainError("grace_period_running", f"the grace period runs until {case.grace_until}")
    if not no_part_in_union_life:
        raise DomainError(
            "takes_part_in_union_life", "a member who takes part in union life is not regarded as having withdrawn"
        )
    return [
        LapseDecided(
            case_id=case_id, member_id=member_id, org_id=account.org_id, decided_on=today, decided_by=by, reason=reason
        ),
        ArrearsCaseClosed(
            case_id=case_id, member_id=member_id, org_id=account.org_id, reason="lapse_decided", closed_on=today
        ),
    ]


def _open_case(account: Account, case_id: UUID) -> Case:
    if account.case is None or account.case.case_id != case_id:
        raise DomainError("case_not_open", f"case {case_id} is not open for this member")
    return account.case


# --- check-off -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoffLine:
    line_no: int
    member_no: str
    amount: Decimal


@dataclass(frozen=True)
class Matched:
    line: CheckoffLine
    member_id: UUID
    events: list[DomainEvent]
    partial: bool


@dataclass(frozen=True)
class Unmatched:
    line: CheckoffLine
    reason: str


def checkoff_ref(org_id: UUID, month: date, member_no: str) -> str:
    """One payment per member, organisation and month: a re-run of the same remittance finds it."""
    return f"checkoff:{org_id}:{month:%Y-%m}:{member_no}"


def match_checkoff(
    org_id: UUID,
    month: date,
    lines: Sequence[CheckoffLine],
    accounts: Mapping[str, Account],
    covered: frozenset[UUID],
    policies: Sequence[Policy],
    today: date,
) -> tuple[list[Matched], list[Unmatched], int]:
    """Each line matched to a member of the remitting organisation's subtree (`covered`), or reported with why not.
    A line paying less than the month's dues is partial: the rest stays in arrears. Returns the matched lines, the
    unmatched ones and how many were applied already (a re-run)."""
    matched: list[Matched] = []
    unmatched: list[Unmatched] = []
    already = 0
    for line in lines:
        account = accounts.get(line.member_no)
        if account is None:
            unmatched.append(Unmatched(line, "no member with this number"))
            continue
        if account.org_id not in covered:
            unmatched.append(Unmatched(line, "the member is not held by this organisation or below it"))
            continue
        if account.ended:
            unmatched.append(Unmatched(line, f"the membership is {account.status}"))
            continue
        try:
            events = pay(
                account,
                account.member_id,
                month,
                line.amount,
                "checkoff",
                checkoff_ref(org_id, month, line.member_no),
                policies,
                today,
            )
        except DomainError as exc:
            unmatched.append(Unmatched(line, exc.message))
            continue
        if not events:
            already += 1
            continue
        assessed = next((e for e in events if isinstance(e, DuesAssessed) and e.month == month), None)
        if assessed is not None:  # the payment assessed its month first
            expected = assessed.amount
        elif month in account.lines:  # assessed before (the monthly review): a payment leaves the figure
            expected = account.lines[month].expected
        else:
            expected = fold_onto(account, events).lines[month].expected
        matched.append(Matched(line, account.member_id, events, expected is not None and line.amount < expected))
    return matched, unmatched, already


def fold_onto(state: Account, events: Iterable[DomainEvent]) -> Account:
    for event in events:
        state = evolve(state, event) or state
    return state
