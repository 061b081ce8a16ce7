"""Membership's events: facts in the past tense. Their published shape is membership's published language
(published/membership.py); each class here adds what the service keeps to itself. Personal data is stored encrypted
and never published; the identity number's blind index goes only to the restricted topic, for the services that match
people by it."""

from __future__ import annotations

from typing import ClassVar

from published import membership as public
from published.membership import CalendarYear, ClockCounted, FestivalArrangement
from shared.events import RESTRICTED, DomainEvent, EventRegistry

__all__ = ["CalendarYear", "ClockCounted", "FestivalArrangement"]

registry = EventRegistry("membership")

# kept in this service's store, never on the public topic: the person's data (encrypted), and the blind index, a
# stable pseudonym of the person that would let anyone reading the topic link records, even after erasure
_NOT_PUBLIC = frozenset({"name_enc", "id_number_enc", "phone_enc", "id_blind_index"})


class _PersonalData(DomainEvent):
    """An applicant's or member's personal data, as this service keeps it (never published)."""

    id_blind_index: str
    name_enc: str
    id_number_enc: str
    phone_enc: str
    private_fields: ClassVar[frozenset[str]] = _NOT_PUBLIC


@registry.register
class OrganizationRegistered(public.OrganizationRegistered, DomainEvent):
    def partition_key(self) -> str:
        return str(self.org_id)


@registry.register
class OrganizationDissolved(public.OrganizationDissolved, DomainEvent):
    def partition_key(self) -> str:
        return str(self.org_id)


@registry.register
class ApplicationSubmitted(public.ApplicationSubmitted, _PersonalData):
    pass


@registry.register
class ApplicationOverdue(public.ApplicationOverdue, DomainEvent):
    pass


@registry.register
class ApplicationApproved(public.ApplicationApproved, DomainEvent):
    pass


@registry.register
class ApplicationRejected(public.ApplicationRejected, DomainEvent):
    pass


@registry.register
class MemberJoined(public.MemberJoined, _PersonalData):
    pass


@registry.register
class MemberSuspended(public.MemberSuspended, DomainEvent):
    pass


@registry.register
class MemberReinstated(public.MemberReinstated, DomainEvent):
    pass


@registry.register
class MemberTerminated(public.MemberTerminated, DomainEvent):
    pass


@registry.register
class MemberOrganizationChanged(public.MemberOrganizationChanged, DomainEvent):
    pass


@registry.register
class PersonalDataErased(public.PersonalDataErased, DomainEvent):
    pass


@registry.register
class MemberIdentityIndexed(public.MemberIdentityIndexed, DomainEvent):
    channel: ClassVar[str] = RESTRICTED


@registry.register
class MemberIdentityIndexErased(public.MemberIdentityIndexErased, DomainEvent):
    channel: ClassVar[str] = RESTRICTED


@registry.register
class UnitUnionFoundingSuggested(public.UnitUnionFoundingSuggested, DomainEvent):
    def partition_key(self) -> str:
        return str(self.org_id)


@registry.register
class MembershipRetained(public.MembershipRetained, DomainEvent):
    pass


@registry.register
class MembershipRestored(public.MembershipRestored, DomainEvent):
    pass


@registry.register
class MembershipLapsed(public.MembershipLapsed, DomainEvent):
    pass


@registry.register
class WorkingCalendarLoaded(public.WorkingCalendarLoaded, DomainEvent):
    def partition_key(self) -> str:
        return f"calendar-{self.year}"


@registry.register
class DeadlineRecounted(public.DeadlineRecounted, DomainEvent):
    pass
