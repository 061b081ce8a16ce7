"""The card service's published language: its events as their consumers read them (feedback's redemptions, the
member's dossier in membership). A full card number stays in the service: its events carry it masked only."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from published.base import PublishedEvent, Vocabulary

SOURCE = "/union/servicecard"
TOPIC = "union.servicecard.v1"


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

    model_config = ConfigDict(frozen=True, extra="ignore")

    days: tuple[Weekday, ...]
    opens: time
    closes: time


class ServicePoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    address: str
    phone: str | None = None
    opening_hours: tuple[OpeningHours, ...] = ()
    off_peak_hours: tuple[OpeningHours, ...] = ()  # 错峰服务: evenings and rest days, for workers on shift


# --- cards: stream card-<member_id> ---------------------------------------------------------------------


class CardIssued(PublishedEvent):
    member_id: UUID
    member_no: str
    card_no_masked: str
    org_id: UUID
    issued_at: datetime


class CardFrozen(PublishedEvent):
    member_id: UUID
    card_no_masked: str
    reason: str


class CardUnfrozen(PublishedEvent):
    member_id: UUID
    card_no_masked: str
    reason: str


class CardRevoked(PublishedEvent):
    member_id: UUID
    card_no_masked: str
    reason: str


class CardReissued(PublishedEvent):
    """A new number for the member's card; the old number is revoked by this same fact."""

    member_id: UUID
    old_card_no_masked: str
    card_no_masked: str
    org_id: UUID
    reason: str
    reissued_at: datetime


class CardOrganizationChanged(PublishedEvent):
    member_id: UUID
    card_no_masked: str
    from_org_id: UUID
    to_org_id: UUID


# --- the catalogue: stream item-<item_id> ---------------------------------------------------------------


class ServiceItemPublished(PublishedEvent):
    item_id: UUID
    name: str
    category: str
    provider: str
    standard: str
    quota_per_year: int | None = None  # None: no limit
    service_points: tuple[ServicePoint, ...] = ()
    org_id: UUID | None = None  # the organisation offering it; None: the whole federation


class ServiceItemWithdrawn(PublishedEvent):
    item_id: UUID
    reason: str


# --- redemptions: stream usage-<member_id>-<item_id>-<year> ---------------------------------------------


class BenefitRedeemed(PublishedEvent):
    redemption_id: UUID
    member_id: UUID
    card_no_masked: str
    item_id: UUID
    category: str
    org_id: UUID  # the member's organisation when the service was given
    units: int
    provider_ref: str | None = None
    year: int  # the quota year (China Standard Time)
    redeemed_at: datetime


class RedemptionReversed(PublishedEvent):
    redemption_id: UUID
    member_id: UUID
    item_id: UUID
    units: int
    year: int
    reason: str
    reversed_at: datetime


# --- allocations of scarce places (抽签、限额): stream allocation-<allocation_id> ----------------------------


class AllocationOpened(PublishedEvent):
    allocation_id: UUID
    item_id: UUID
    org_id: UUID  # members of this organisation's subtree may enter
    title: str
    mode: str  # draw (抽签) | first_come (先到先得)
    places: int
    period: str  # the limit's period, e.g. "2026-11-29" (a day) or "2026-11" (a month), China Standard Time
    limit_per_member: int  # entries (draws) or places (first come) per member, item and period
    entries_close_at: datetime
    entitlement_days: int  # a win is redeemable this long
    no_show_ban_days: int  # a win left unused bans its member from this item's allocations this long
    seed_commitment: str = ""  # draws: SHA-256 of the seed, published before any entry; revealed by DrawHeld


class DrawHeld(PublishedEvent):
    """Seed revealed, entries' digest, winners: allocations.draw(seed, entries, places, ticket_rule) again."""

    allocation_id: UUID
    seed: str  # hex
    seed_commitment: str
    entries: int
    entries_digest: str
    winners: tuple[UUID, ...]
    # 1: a ticket hashed the seed, the entries' digest and the entry (draws held before issue 30, which carry no
    # field); 2: the seed and the entry alone, so no entry moves another's ticket (docs/allocations.md)
    ticket_rule: int = 1


# --- a member's entries for one item in one period: stream entries-<member_id>-<item_id>-<period> ---------


class AllocationEntered(PublishedEvent):
    allocation_id: UUID
    member_id: UUID
    item_id: UUID
    period: str


class PlaceAllocated(PublishedEvent):
    """A first-come place given; its entitlement is granted in the same transaction."""

    allocation_id: UUID
    member_id: UUID
    item_id: UUID
    period: str
    entitlement_id: UUID


# --- entitlements on the member's card: stream entitlements-<member_id> -----------------------------------


class EntitlementGranted(PublishedEvent):
    entitlement_id: UUID
    member_id: UUID
    allocation_id: UUID
    item_id: UUID
    expires_at: datetime
    no_show_ban_days: int


class EntitlementUsed(PublishedEvent):
    entitlement_id: UUID
    member_id: UUID
    item_id: UUID
    used_at: datetime


class EntitlementNoShow(PublishedEvent):
    """Left unused past its expiry: the member may not enter this item's allocations until `banned_until`."""

    entitlement_id: UUID
    member_id: UUID
    item_id: UUID
    expired_at: datetime
    banned_until: datetime


vocabulary = Vocabulary(
    SOURCE,
    [
        CardIssued,
        CardFrozen,
        CardUnfrozen,
        CardRevoked,
        CardReissued,
        CardOrganizationChanged,
        ServiceItemPublished,
        ServiceItemWithdrawn,
        BenefitRedeemed,
        RedemptionReversed,
        AllocationOpened,
        DrawHeld,
        AllocationEntered,
        PlaceAllocated,
        EntitlementGranted,
        EntitlementUsed,
        EntitlementNoShow,
    ],
)
decode = vocabulary.decode
