"""Service card events: facts in the past tense. Their published shape is the card service's published language
(published/servicecard.py); each class here adds what the service keeps to itself. Full card numbers stay in this
service, never on a topic."""

from __future__ import annotations

from typing import ClassVar

from published import servicecard as public
from published.servicecard import OpeningHours, ServicePoint, Weekday
from shared.events import DomainEvent, EventRegistry

__all__ = ["OpeningHours", "ServicePoint", "Weekday"]

registry = EventRegistry("servicecard")

# a card number is enough to spend a member's services: topics carry it masked only
_CARD_NUMBER = frozenset({"card_no"})


class _CardNumber(DomainEvent):
    """The card's full number, as this service keeps it (never published)."""

    card_no: str
    private_fields: ClassVar[frozenset[str]] = _CARD_NUMBER


# --- cards: stream card-<member_id> ---------------------------------------------------------------------


@registry.register
class CardIssued(public.CardIssued, _CardNumber):
    pass


@registry.register
class CardFrozen(public.CardFrozen, _CardNumber):
    pass


@registry.register
class CardUnfrozen(public.CardUnfrozen, _CardNumber):
    pass


@registry.register
class CardRevoked(public.CardRevoked, _CardNumber):
    pass


@registry.register
class CardReissued(public.CardReissued, _CardNumber):
    old_card_no: str
    private_fields: ClassVar[frozenset[str]] = frozenset({"card_no", "old_card_no"})


@registry.register
class CardOrganizationChanged(public.CardOrganizationChanged, _CardNumber):
    pass


# --- the catalogue: stream item-<item_id> ---------------------------------------------------------------


@registry.register
class ServiceItemPublished(public.ServiceItemPublished, DomainEvent):
    def partition_key(self) -> str:
        return str(self.item_id)


@registry.register
class ServiceItemWithdrawn(public.ServiceItemWithdrawn, DomainEvent):
    def partition_key(self) -> str:
        return str(self.item_id)


# --- redemptions: stream usage-<member_id>-<item_id>-<year> ---------------------------------------------


@registry.register
class BenefitRedeemed(public.BenefitRedeemed, _CardNumber):
    pass


@registry.register
class RedemptionReversed(public.RedemptionReversed, DomainEvent):
    pass


# --- allocations of scarce places (抽签、限额): stream allocation-<allocation_id> ----------------------------


@registry.register
class AllocationOpened(public.AllocationOpened, DomainEvent):
    def partition_key(self) -> str:
        return str(self.allocation_id)


@registry.register
class DrawHeld(public.DrawHeld, DomainEvent):
    def partition_key(self) -> str:
        return str(self.allocation_id)


# --- a member's entries for one item in one period: stream entries-<member_id>-<item_id>-<period> ---------


@registry.register
class AllocationEntered(public.AllocationEntered, DomainEvent):
    pass


@registry.register
class PlaceAllocated(public.PlaceAllocated, DomainEvent):
    pass


# --- entitlements on the member's card: stream entitlements-<member_id> -----------------------------------


@registry.register
class EntitlementGranted(public.EntitlementGranted, DomainEvent):
    pass


@registry.register
class EntitlementUsed(public.EntitlementUsed, DomainEvent):
    pass


@registry.register
class EntitlementNoShow(public.EntitlementNoShow, DomainEvent):
    pass
