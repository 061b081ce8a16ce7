"""Service card rules as deciders: plain functions over plain data, no I/O.

Three aggregates: the member's card (stream `card-<member_id>`), a catalogue item (`item-<item_id>`), and
a member's use of one item in one quota year (`usage-<member_id>-<item_id>-<year>`). The card follows the
member's state as membership publishes it, folded in the order of the member's own stream.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from itertools import combinations
from uuid import UUID

from stdnum import luhn

from published import membership
from published.membership import MemberStatus
from services.servicecard.events import (
    BenefitRedeemed,
    CardFrozen,
    CardIssued,
    CardOrganizationChanged,
    CardReissued,
    CardRevoked,
    CardUnfrozen,
    OpeningHours,
    RedemptionReversed,
    ServiceItemPublished,
    ServiceItemWithdrawn,
    ServicePoint,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent


class ServiceCategory(StrEnum):
    MEDICAL = "medical"  # 医疗
    EMPLOYMENT = "employment"  # 就业
    TRAINING = "training"  # 职业培训
    LEGAL_AID = "legal_aid"  # 法律援助
    HARDSHIP = "hardship"  # 困难帮扶
    CULTURE = "culture"  # 职工文化


class CardStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    REVOKED = "revoked"


# quota years and usage months are China Standard Time, which has no daylight saving
SERVICE_TZ = timezone(timedelta(hours=8), "CST")


def quota_year(at: datetime) -> int:
    return at.astimezone(SERVICE_TZ).year


def usage_month(at: datetime) -> str:
    return at.astimezone(SERVICE_TZ).strftime("%Y-%m")


# --- card numbers ---------------------------------------------------------------------------------------

CARD_LENGTH = 19
# ISO/IEC 7812 major industry identifier 9 (national assignment), then 17 random digits and the Luhn digit
CARD_PREFIX = "9"
_RANDOM_DIGITS = CARD_LENGTH - len(CARD_PREFIX) - 1


def card_number_from(random_digits: str) -> str:
    if len(random_digits) != _RANDOM_DIGITS:
        raise ValueError(f"a card number needs {_RANDOM_DIGITS} random digits")
    body = CARD_PREFIX + random_digits
    return body + luhn.calc_check_digit(body)


def new_card_number() -> str:
    """Unpredictable: knowing one member's number says nothing about the next one's."""
    return card_number_from(f"{secrets.randbelow(10**_RANDOM_DIGITS):0{_RANDOM_DIGITS}d}")


def mask_card_number(card_no: str) -> str:
    return f"{card_no[:4]}{'*' * (len(card_no) - 8)}{card_no[-4:]}"


def validate_card_number(value: str) -> str:
    """19 digits (spaces between groups allowed), the last a Luhn check digit; ValueError says what is wrong."""
    number = "".join(value.split())
    if len(number) != CARD_LENGTH or not (number.isascii() and number.isdigit()):
        raise ValueError(f"card number should be {CARD_LENGTH} digits")
    if not luhn.is_valid(number):
        right = luhn.calc_check_digit(number[:-1])
        raise ValueError(f"card number check digit should be {right}, not {number[-1]}")
    return number


def parse_card_number(value: str) -> str:
    try:
        return validate_card_number(value)
    except ValueError as exc:
        raise InvalidInputError("card_no", str(exc)) from None


# --- the member, as membership tells it -----------------------------------------------------------------

# what membership says of a member that the card follows (published/membership.py: the status events and the move)
MEMBER_EVENTS = membership.MEMBER_EVENTS


# what a member's card is for each status: a retained member (保留会籍) is still a member and keeps a working card;
# a lapsed one (视为自动退会) has left, as a terminated one has
CARD_FOR: Mapping[MemberStatus, CardStatus] = {
    MemberStatus.ACTIVE: CardStatus.ACTIVE,
    MemberStatus.RETAINED: CardStatus.ACTIVE,
    MemberStatus.SUSPENDED: CardStatus.FROZEN,
    MemberStatus.LAPSED: CardStatus.REVOKED,
    MemberStatus.TERMINATED: CardStatus.REVOKED,
}


@dataclass(frozen=True)
class MemberFact:
    """One consumed membership event about a member. `sequence` is its version in the member's stream."""

    sequence: int
    arrival: int  # the inbox position: a tie-break for messages without a sequence
    name: str
    org_id: UUID | None = None  # MemberJoined's org_id, MemberOrganizationChanged's to_org_id
    member_no: str | None = None


@dataclass(frozen=True)
class MemberState:
    joined: bool = False
    member_no: str = ""
    org_id: UUID | None = None
    status: MemberStatus = MemberStatus.ACTIVE


def fold_member(facts: Iterable[MemberFact]) -> MemberState:
    """The member's state from their events in their stream's order, whatever order they arrived in."""
    state = MemberState()
    for fact in sorted(facts, key=lambda f: (f.sequence, f.arrival)):
        state = _evolve_member(state, fact)
    return state


def _evolve_member(state: MemberState, fact: MemberFact) -> MemberState:
    if fact.name == "MemberJoined":
        state = replace(state, joined=True, member_no=fact.member_no or state.member_no, org_id=fact.org_id)
    elif fact.name == membership.MOVED:
        return replace(state, org_id=fact.org_id)
    return replace(state, status=membership.next_status(state.status, fact.name) or state.status)


# --- the card -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    member_id: UUID
    member_no: str
    card_no: str
    status: CardStatus
    org_id: UUID
    issued_at: datetime
    replaced: frozenset[str] = frozenset()  # earlier numbers, revoked by a reissue


def evolve_card(card: Card | None, event: DomainEvent) -> Card | None:  # noqa: PLR0911 - one arm per event
    match event:
        case CardIssued():
            return Card(
                event.member_id, event.member_no, event.card_no, CardStatus.ACTIVE, event.org_id, event.issued_at
            )
        case CardFrozen() if card is not None:
            return replace(card, status=CardStatus.FROZEN)
        case CardUnfrozen() if card is not None:
            return replace(card, status=CardStatus.ACTIVE)
        case CardRevoked() if card is not None:
            return replace(card, status=CardStatus.REVOKED)
        case CardReissued() if card is not None:
            return replace(
                card, card_no=event.card_no, issued_at=event.reissued_at, replaced=card.replaced | {event.old_card_no}
            )
        case CardOrganizationChanged() if card is not None:
            return replace(card, org_id=event.to_org_id)
    return card


def fold_card(events: Iterable[DomainEvent]) -> Card | None:
    card: Card | None = None
    for event in events:
        card = evolve_card(card, event)
    return card


def needs_card(card: Card | None, member: MemberState) -> bool:
    return card is None and member.joined


def follow_member(
    card: Card | None, member_id: UUID, member: MemberState, new_card_no: str | None, now: datetime
) -> list[DomainEvent]:
    """The events that bring the card in line with the member: issue, move, freeze, unfreeze, revoke."""
    if not member.joined or member.org_id is None:
        return []  # membership events ahead of the join: the join will find them
    events: list[DomainEvent] = []
    if card is None:
        if new_card_no is None:
            raise ValueError("a new card needs a number")
        events.append(
            CardIssued(
                member_id=member_id,
                member_no=member.member_no,
                card_no=new_card_no,
                card_no_masked=mask_card_number(new_card_no),
                org_id=member.org_id,
                issued_at=now,
            )
        )
        card = evolve_card(None, events[-1])
        assert card is not None
    if card.status is CardStatus.REVOKED:
        return events  # a revoked card stays revoked
    no, masked = card.card_no, mask_card_number(card.card_no)
    if member.org_id != card.org_id and not member.status.ended:
        events.append(
            CardOrganizationChanged(
                member_id=member_id, card_no=no, card_no_masked=masked, from_org_id=card.org_id, to_org_id=member.org_id
            )
        )
    wanted = CARD_FOR[member.status]
    if wanted is CardStatus.REVOKED:
        events.append(
            CardRevoked(member_id=member_id, card_no=no, card_no_masked=masked, reason=f"membership {member.status}")
        )
    elif wanted is CardStatus.FROZEN and card.status is CardStatus.ACTIVE:
        events.append(CardFrozen(member_id=member_id, card_no=no, card_no_masked=masked, reason="membership suspended"))
    elif wanted is CardStatus.ACTIVE and card.status is CardStatus.FROZEN:
        events.append(
            CardUnfrozen(member_id=member_id, card_no=no, card_no_masked=masked, reason="membership reinstated")
        )
    return events


def ensure_usable(card: Card | None, presented: str) -> Card:
    """The card behind a presented number, if that number may spend services now."""
    if card is None:
        raise NotFoundError("card", presented)
    if presented != card.card_no:
        raise DomainError("card_not_active", "this card number was replaced by a reissued card")
    if card.status is not CardStatus.ACTIVE:
        raise DomainError("card_not_active", f"the card is {card.status}")
    return card


def reissue(card: Card | None, presented: str, new_card_no: str, reason: str, now: datetime) -> list[DomainEvent]:
    """A lost or damaged card: a new number, the old one revoked. A frozen card stays frozen."""
    if card is None:
        raise NotFoundError("card", presented)
    if presented != card.card_no:
        raise DomainError("card_not_active", "this card number was already replaced by a reissued card")
    if card.status is CardStatus.REVOKED:
        raise DomainError("card_not_active", "the card is revoked: the membership has ended")
    return [
        CardReissued(
            member_id=card.member_id,
            old_card_no=card.card_no,
            old_card_no_masked=mask_card_number(card.card_no),
            card_no=new_card_no,
            card_no_masked=mask_card_number(new_card_no),
            org_id=card.org_id,
            reason=reason,
            reissued_at=now,
        )
    ]


# --- the catalogue --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    item_id: UUID
    name: str
    category: ServiceCategory
    quota_per_year: int | None
    withdrawn: bool = False
    org_id: UUID | None = None  # offered to that organisation's members (and those below it); None: everyone


@dataclass(frozen=True)
class PublishItem:
    item_id: UUID
    name: str
    category: ServiceCategory
    provider: str
    standard: str
    quota_per_year: int | None = None
    service_points: Sequence[ServicePoint] = ()
    org_id: UUID | None = None


def publish_item(cmd: PublishItem) -> list[DomainEvent]:
    if cmd.quota_per_year is not None and cmd.quota_per_year < 1:
        raise InvalidInputError("quota_per_year", "a quota is at least 1 a year; leave it out for no limit")
    for index, point in enumerate(cmd.service_points):
        _check_service_point(f"service_points.{index}", point)
    return [
        ServiceItemPublished(
            item_id=cmd.item_id,
            name=cmd.name,
            category=cmd.category,
            provider=cmd.provider,
            standard=cmd.standard,
            quota_per_year=cmd.quota_per_year,
            service_points=tuple(cmd.service_points),
            org_id=cmd.org_id,
        )
    ]


def _check_service_point(where: str, point: ServicePoint) -> None:
    if not point.opening_hours and not point.off_peak_hours:
        raise InvalidInputError(f"{where}.opening_hours", "a service point needs its opening hours")
    windows: list[tuple[str, OpeningHours]] = [
        *((f"opening_hours.{i}", w) for i, w in enumerate(point.opening_hours)),
        *((f"off_peak_hours.{i}", w) for i, w in enumerate(point.off_peak_hours)),
    ]
    for name, window in windows:
        if window.closes <= window.opens:
            raise InvalidInputError(
                f"{where}.{name}.closes",
                f"closes at {window.closes:%H:%M}, which is not after it opens at {window.opens:%H:%M}",
            )
        repeated = sorted({d for d in window.days if window.days.count(d) > 1})
        if repeated:
            raise InvalidInputError(f"{where}.{name}.days", f"lists {', '.join(repeated)} more than once")
    for (first, a), (second, b) in combinations(windows, 2):
        shared_days = [d for d in a.days if d in b.days]
        if shared_days and a.opens < b.closes and b.opens < a.closes:
            rule = (
                "off-peak hours are outside the regular opening hours; "
                if first.startswith("opening") and second.startswith("off_peak")
                else ""
            )
            raise InvalidInputError(
                f"{where}.{second}",
                f"{rule}overlaps {first} on {shared_days[0]} "
                f"({b.opens:%H:%M}-{b.closes:%H:%M} and {a.opens:%H:%M}-{a.closes:%H:%M})",
            )


def withdraw_item(item: Item | None, item_id: UUID, reason: str) -> list[DomainEvent]:
    if item is None:
        raise NotFoundError("item", item_id)
    if item.withdrawn:
        raise DomainError("item_withdrawn", "the item is already withdrawn")
    return [ServiceItemWithdrawn(item_id=item_id, reason=reason)]


def evolve_item(item: Item | None, event: DomainEvent) -> Item | None:
    match event:
        case ServiceItemPublished():
            return Item(
                event.item_id, event.name, ServiceCategory(event.category), event.quota_per_year, org_id=event.org_id
            )
        case ServiceItemWithdrawn() if item is not None:
            return replace(item, withdrawn=True)
    return item


def fold_item(events: Iterable[DomainEvent]) -> Item | None:
    item: Item | None = None
    for event in events:
        item = evolve_item(item, event)
    return item


# --- redemptions and quotas -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spent:
    units: int
    reversed: bool = False


@dataclass(frozen=True)
class Usage:
    """One member's use of one item in one quota year: whichever card they used."""

    redemptions: Mapping[UUID, Spent] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return sum(s.units for s in self.redemptions.values() if not s.reversed)


def remaining(quota_per_year: int | None, used: int) -> int | None:
    """What is left of a yearly quota; None where the item has no limit."""
    return None if quota_per_year is None else max(quota_per_year - used, 0)


def evolve_usage(usage: Usage, event: DomainEvent) -> Usage:
    match event:
        case BenefitRedeemed():
            return Usage({**usage.redemptions, event.redemption_id: Spent(event.units)})
        case RedemptionReversed() if event.redemption_id in usage.redemptions:
            spent = usage.redemptions[event.redemption_id]
            return Usage({**usage.redemptions, event.redemption_id: replace(spent, reversed=True)})
    return usage


def fold_usage(events: Iterable[DomainEvent]) -> Usage:
    usage = Usage()
    for event in events:
        usage = evolve_usage(usage, event)
    return usage


@dataclass(frozen=True)
class Redeem:
    redemption_id: UUID
    card_no: str
    item_id: UUID
    units: int = 1
    provider_ref: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "card_no", parse_card_number(self.card_no))
        if self.units < 1:
            raise InvalidInputError("units", "a redemption spends at least 1 unit")


def redeem(
    card: Card | None, item: Item | None, usage: Usage, cmd: Redeem, now: datetime, *, offered_here: bool = True
) -> list[DomainEvent]:
    """Spend a service on a card: an active card, an item on offer to the card's organisation (`offered_here`:
    the item is the federation's, or its organisation is the card's or above it), and quota left this year."""
    usable = ensure_usable(card, cmd.card_no)
    if item is None:
        raise NotFoundError("item", cmd.item_id)
    if item.withdrawn:
        raise DomainError("item_withdrawn", f"{item.name} is no longer offered")
    if not offered_here:
        raise DomainError("item_not_offered_here", f"{item.name} is offered to another organisation's members")
    left = remaining(item.quota_per_year, usage.used)
    if left is not None and cmd.units > left:
        raise DomainError(
            "quota_exhausted", f"{left} of {item.quota_per_year} left this year for {item.name}, {cmd.units} asked"
        )
    return [
        BenefitRedeemed(
            redemption_id=cmd.redemption_id,
            member_id=usable.member_id,
            card_no=usable.card_no,
            card_no_masked=mask_card_number(usable.card_no),
            item_id=item.item_id,
            category=item.category,
            org_id=usable.org_id,
            units=cmd.units,
            provider_ref=cmd.provider_ref,
            year=quota_year(now),
            redeemed_at=now,
        )
    ]


def reverse(
    usage: Usage, redemption_id: UUID, member_id: UUID, item_id: UUID, year: int, reason: str, now: datetime
) -> list[DomainEvent]:
    """Undo a redemption: its units count towards the quota no more."""
    spent = usage.redemptions.get(redemption_id)
    if spent is None:
        raise NotFoundError("redemption", redemption_id)
    if spent.reversed:
        raise DomainError("already_reversed", "the redemption was already reversed")
    return [
        RedemptionReversed(
            redemption_id=redemption_id,
            member_id=member_id,
            item_id=item_id,
            units=spent.units,
            year=year,
            reason=reason,
            reversed_at=now,
        )
    ]
