"""The dues service's events: policies with effective dates, a ledger per member per month, the six-month case.

Money is a decimal in yuan (two places) on the wire, never a float. Events about a member are keyed by them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("dues")


@registry.register
class DuesPolicySet(DomainEvent):
    """A dues policy in force from `effective_from` (the first day of a month) until the next one's."""

    policy_id: UUID
    effective_from: date
    rate: Decimal
    base_step: Decimal
    rounding: str
    unpaid_months: int
    grace_days: int
    citation: str

    def partition_key(self) -> str:
        return "dues-policy"


@registry.register
class DuesAccountOpened(DomainEvent):
    """Membership's join reached this service: the member's dues ledger begins with `opened_on`'s month."""

    member_id: UUID
    member_no: str
    org_id: UUID
    joined_at: date
    opened_on: date


@registry.register
class MemberStatusFollowed(DomainEvent):
    """What membership said about the member's status or organisation, on the day it said it (kept inside: the
    ledger's liability follows it; membership's own events are the public record)."""

    member_id: UUID
    status: str
    org_id: UUID
    on: date
    published: ClassVar[bool] = False


@registry.register
class WageBaseDeclared(DomainEvent):
    """The member's monthly wage base (basic wage: no bonuses, allowances or benefits) from `from_month` on.
    A person's wage stays in this service: never on a topic."""

    published: ClassVar[bool] = False
    member_id: UUID
    monthly_base: Decimal
    from_month: date
    source: str


@registry.register
class DuesAssessed(DomainEvent):
    """A month's dues, fixed when the month is assessed under the policy then in force: a later policy never
    changes it. `amount` is None while no wage base is known; `liable` is False for retained or exempt months."""

    member_id: UUID
    org_id: UUID
    month: date
    liable: bool
    reason: str | None = None  # why not liable: retained, exempt, ended
    wage_base: Decimal | None = None
    rate: Decimal | None = None
    amount: Decimal | None = None
    policy_from: date
    private_fields: ClassVar[frozenset[str]] = frozenset({"wage_base"})  # a person's wage: not on the topic


@registry.register
class DuesPaid(DomainEvent):
    member_id: UUID
    org_id: UUID
    month: date
    amount: Decimal
    paid_by: str  # online | checkoff
    payment_ref: str  # unique: a re-run or a retry finds it and pays nothing twice
    paid_on: date


@registry.register
class DuesExempted(DomainEvent):
    member_id: UUID
    from_month: date
    to_month: date
    reason: str


@registry.register
class ArrearsCaseOpened(DomainEvent):
    """Six consecutive months unpaid: a case in the organisation's queue, never an automatic end."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    unpaid_months: list[date]
    opened_on: date
    threshold: int


@registry.register
class ArrearsEducationRecorded(DomainEvent):
    """Staff spoke with the member (教育): the grace period runs from here."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    contacted_on: date
    by: str
    note: str
    grace_until: date


@registry.register
class ArrearsCaseClosed(DomainEvent):
    case_id: UUID
    member_id: UUID
    org_id: UUID
    reason: str  # paid | exempted | retained | ended | lapsed
    closed_on: date


@registry.register
class LapseDecided(DomainEvent):
    """Staff decided, after education and the grace period, that the member is regarded as having withdrawn
    (视为自动退会). Membership records the lapse when it reads this: it owns the member's status."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    decided_on: date
    decided_by: str
    reason: str


@registry.register
class CheckoffRemittanceImported(DomainEvent):
    """An organisation's check-off remittance (代扣代缴) for a month: what matched, what did not."""

    remittance_id: UUID
    org_id: UUID
    month: date
    file_name: str
    lines: int
    matched: int
    partial: int
    already_applied: int
    total: Decimal
    unmatched: list[dict[str, str | int]]

    def partition_key(self) -> str:
        return str(self.org_id)
