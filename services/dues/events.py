"""The dues service's events: policies with effective dates, a ledger per member per month, the six-month case.
Their published shape is the dues service's published language (published/dues.py); each class here adds what the
service keeps to itself.

Money is a decimal in yuan (two places) on the wire, never a float. Events about a member are keyed by them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from published import dues as public
from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("dues")


@registry.register
class DuesPolicySet(public.DuesPolicySet, DomainEvent):
    def partition_key(self) -> str:
        return "dues-policy"


@registry.register
class DuesAccountOpened(public.DuesAccountOpened, DomainEvent):
    pass


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
class DuesAssessed(public.DuesAssessed, DomainEvent):
    wage_base: Decimal | None = None
    private_fields: ClassVar[frozenset[str]] = frozenset({"wage_base"})  # a person's wage: not on the topic


@registry.register
class DuesPaid(public.DuesPaid, DomainEvent):
    pass


@registry.register
class DuesExempted(public.DuesExempted, DomainEvent):
    pass


@registry.register
class ArrearsCaseOpened(public.ArrearsCaseOpened, DomainEvent):
    pass


@registry.register
class ArrearsEducationRecorded(public.ArrearsEducationRecorded, DomainEvent):
    pass


@registry.register
class ArrearsCaseClosed(public.ArrearsCaseClosed, DomainEvent):
    pass


@registry.register
class LapseDecided(public.LapseDecided, DomainEvent):
    pass


@registry.register
class CheckoffRemittanceImported(public.CheckoffRemittanceImported, DomainEvent):
    def partition_key(self) -> str:
        return str(self.org_id)
