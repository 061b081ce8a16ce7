"""Service card events: facts in the past tense. Full card numbers stay in this service, never on a topic."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("servicecard")

# a card number is enough to spend a member's services: topics carry it masked only
_CARD_NUMBER = frozenset({"card_no"})


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class OpeningHours(BaseModel):
    """One window, the same on each of `days`, in the service point's local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Weekday, ...]
    opens: time
    closes: time


class ServicePoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    address: str
    phone: str | None = None
    opening_hours: tuple[OpeningHours, ...] = ()
    off_peak_hours: tuple[OpeningHours, ...] = ()  # 错峰服务: evenings and rest days, for workers on shift


# --- cards: stream card-<member_id> ---------------------------------------------------------------------


@registry.register
class CardIssued(DomainEvent):
    member_id: UUID
    member_no: str
    card_no: str
    card_no_masked: str
    org_id: UUID
    issued_at: datetime
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


@registry.register
class CardFrozen(DomainEvent):
    member_id: UUID
    card_no: str
    card_no_masked: str
    reason: str
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


@registry.register
class CardUnfrozen(DomainEvent):
    member_id: UUID
    card_no: str
    card_no_masked: str
    reason: str
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


@registry.register
class CardRevoked(DomainEvent):
    member_id: UUID
    card_no: str
    card_no_masked: str
    reason: str
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


@registry.register
class CardReissued(DomainEvent):
    """A new number for the member's card; the old number is revoked by this same fact."""

    member_id: UUID
    old_card_no: str
    old_card_no_masked: str
    card_no: str
    card_no_masked: str
    org_id: UUID
    reason: str
    reissued_at: datetime
    private_fields: ClassVar[frozenset[str]] = frozenset({"card_no", "old_card_no"})


@registry.register
class CardOrganizationChanged(DomainEvent):
    member_id: UUID
    card_no: str
    card_no_masked: str
    from_org_id: UUID
    to_org_id: UUID
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


# --- the catalogue: stream item-<item_id> ---------------------------------------------------------------


@registry.register
class ServiceItemPublished(DomainEvent):
    item_id: UUID
    name: str
    category: str
    provider: str
    standard: str
    quota_per_year: int | None = None  # None: no limit
    service_points: tuple[ServicePoint, ...] = ()
    org_id: UUID | None = None  # the organisation offering it; None: the whole federation

    def partition_key(self) -> str:
        return str(self.item_id)


@registry.register
class ServiceItemWithdrawn(DomainEvent):
    item_id: UUID
    reason: str

    def partition_key(self) -> str:
        return str(self.item_id)


# --- redemptions: stream usage-<member_id>-<item_id>-<year> ---------------------------------------------


@registry.register
class BenefitRedeemed(DomainEvent):
    redemption_id: UUID
    member_id: UUID
    card_no: str
    card_no_masked: str
    item_id: UUID
    category: str
    org_id: UUID  # the member's organisation when the service was given
    units: int
    provider_ref: str | None = None
    year: int  # the quota year (China Standard Time)
    redeemed_at: datetime
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


@registry.register
class RedemptionReversed(DomainEvent):
    redemption_id: UUID
    member_id: UUID
    item_id: UUID
    units: int
    year: int
    reason: str
    reversed_at: datetime
