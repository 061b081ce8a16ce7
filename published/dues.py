"""The dues service's published language: its events as their consumers read them (membership records a lapse on
LapseDecided and keeps the rest for the member's dossier).

Money is a decimal in yuan (two places) on the wire, never a float. Events about a member are keyed by them; a
person's wage stays in the dues service."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from published.base import PublishedEvent, Vocabulary

SOURCE = "/union/dues"
TOPIC = "union.dues.v1"


class DuesPolicySet(PublishedEvent):
    """A dues policy in force from `effective_from` (the first day of a month) until the next one's."""

    policy_id: UUID
    effective_from: date
    rate: Decimal
    base_step: Decimal
    rounding: str
    unpaid_months: int
    grace_days: int
    citation: str


class DuesAccountOpened(PublishedEvent):
    """Membership's join reached this service: the member's dues ledger begins with `opened_on`'s month."""

    member_id: UUID
    member_no: str
    org_id: UUID
    joined_at: date
    opened_on: date


class DuesAssessed(PublishedEvent):
    """A month's dues, fixed when the month is assessed under the policy then in force: a later policy never
    changes it. `amount` is None while no wage base is known; `liable` is False for retained or exempt months."""

    member_id: UUID
    org_id: UUID
    month: date
    liable: bool
    reason: str | None = None  # why not liable: retained, exempt, ended
    rate: Decimal | None = None
    amount: Decimal | None = None
    policy_from: date


class DuesPaid(PublishedEvent):
    member_id: UUID
    org_id: UUID
    month: date
    amount: Decimal
    paid_by: str  # online | checkoff
    payment_ref: str  # unique: a re-run or a retry finds it and pays nothing twice
    paid_on: date


class DuesExempted(PublishedEvent):
    member_id: UUID
    from_month: date
    to_month: date
    reason: str


class ArrearsCaseOpened(PublishedEvent):
    """Six consecutive months unpaid: a case in the organisation's queue, never an automatic end."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    unpaid_months: list[date]
    opened_on: date
    threshold: int


class ArrearsEducationRecorded(PublishedEvent):
    """Staff spoke with the member (教育): the grace period runs from here."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    contacted_on: date
    by: str
    note: str
    grace_until: date


class ArrearsCaseClosed(PublishedEvent):
    case_id: UUID
    member_id: UUID
    org_id: UUID
    reason: str  # paid | exempted | retained | ended | lapsed
    closed_on: date


class LapseDecided(PublishedEvent):
    """Staff decided, after education and the grace period, that the member is regarded as having withdrawn
    (视为自动退会). Membership records the lapse when it reads this: it owns the member's status."""

    case_id: UUID
    member_id: UUID
    org_id: UUID
    decided_on: date
    decided_by: str
    reason: str


class CheckoffRemittanceImported(PublishedEvent):
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


vocabulary = Vocabulary(
    SOURCE,
    [
        DuesPolicySet,
        DuesAccountOpened,
        DuesAssessed,
        DuesPaid,
        DuesExempted,
        ArrearsCaseOpened,
        ArrearsEducationRecorded,
        ArrearsCaseClosed,
        LapseDecided,
        CheckoffRemittanceImported,
    ],
)
decode = vocabulary.decode
