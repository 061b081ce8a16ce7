"""Membership's events: facts in the past tense. Personal data is stored encrypted and never published; the
identity number's blind index goes only to the restricted topic, for the services that match people by it."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, Field

from shared.events import RESTRICTED, DomainEvent, EventRegistry

registry = EventRegistry("membership")

# kept in this service's store, never on the public topic: the person's data (encrypted), and the blind index, a
# stable pseudonym of the person that would let anyone reading the topic link records, even after erasure
_NOT_PUBLIC = frozenset({"name_enc", "id_number_enc", "phone_enc", "id_blind_index"})


@registry.register
class OrganizationRegistered(DomainEvent):
    org_id: UUID
    name: str
    type: str
    subtype: str | None = None
    parent_id: UUID | None = None
    region_code: str
    credit_code: str | None = None
    industry: str | None = None
    accepts_members: bool

    def partition_key(self) -> str:
        return str(self.org_id)


@registry.register
class OrganizationDissolved(DomainEvent):
    org_id: UUID
    reason: str

    def partition_key(self) -> str:
        return str(self.org_id)


class CalendarYear(BaseModel):
    """One year of a clock: the notice it was counted on (its number), or none: provisional, on the statutory rule."""

    year: int
    notice: str | None = None


class FestivalArrangement(BaseModel):
    """One festival of a notice: its days off and the weekend days worked instead (shared.workdays.FestivalDays)."""

    festival: str  # new_year, spring_festival, qingming, labour_day, dragon_boat, mid_autumn, national_day
    off: list[date]
    worked: list[date] = Field(default_factory=list)


class ClockCounted(BaseModel):
    """What a clock was counted on (shared.workdays.Clock): so many working days, over these years' calendars."""

    started_at: datetime  # the period runs from the day after this one (China Standard Time)
    working_days: int
    provisional: bool
    counted_on: list[CalendarYear]


@registry.register
class ApplicationSubmitted(DomainEvent):
    application_id: UUID
    member_id: UUID  # reserved at submission: the person's data key is named after it
    org_id: UUID
    id_blind_index: str
    name_enc: str
    id_number_enc: str
    phone_enc: str
    employer_credit_code: str | None = None
    employer_name: str | None = None
    employment_type: str
    household_type: str
    # the office's clock: contact within so many working days (shared.workdays), and what it was counted on; a
    # provisional clock is counted again when its year's notice is loaded (DeadlineRecounted). Events recorded
    # before provisional clocks have neither where the calendar of the year was not known
    respond_by: datetime | None = None
    clock: ClockCounted | None = None
    private_fields: ClassVar[frozenset[str]] = _NOT_PUBLIC


@registry.register
class ApplicationOverdue(DomainEvent):
    """The application's clock ran out before anyone reviewed it: it joins the parent organisation's queue."""

    application_id: UUID
    member_id: UUID
    org_id: UUID
    respond_by: datetime
    escalated_to_org_id: UUID | None = None  # the parent organisation; None for a root organisation


@registry.register
class ApplicationApproved(DomainEvent):
    application_id: UUID
    member_id: UUID
    member_no: str
    org_id: UUID
    reviewer: str


@registry.register
class ApplicationRejected(DomainEvent):
    application_id: UUID
    member_id: UUID
    org_id: UUID
    reviewer: str
    reason: str


@registry.register
class MemberJoined(DomainEvent):
    member_id: UUID
    member_no: str
    org_id: UUID
    joined_at: date
    application_id: UUID | None = None
    imported: bool = False
    id_blind_index: str
    name_enc: str
    id_number_enc: str
    phone_enc: str
    employer_credit_code: str | None = None
    employer_name: str | None = None
    employment_type: str
    household_type: str
    private_fields: ClassVar[frozenset[str]] = _NOT_PUBLIC


@registry.register
class MemberSuspended(DomainEvent):
    member_id: UUID
    reason: str


@registry.register
class MemberReinstated(DomainEvent):
    member_id: UUID
    reason: str


@registry.register
class MemberTerminated(DomainEvent):
    member_id: UUID
    reason: str


@registry.register
class MemberOrganizationChanged(DomainEvent):
    member_id: UUID
    from_org_id: UUID
    to_org_id: UUID
    transfer_id: UUID | None = None


@registry.register
class PersonalDataErased(DomainEvent):
    member_id: UUID


@registry.register
class MemberIdentityIndexed(DomainEvent):
    """The member's identity-number blind index, for the services that match people by identity number (transfer,
    for regional employment changes). Only on the restricted topic, which regional systems cannot read."""

    member_id: UUID
    id_blind_index: str
    channel: ClassVar[str] = RESTRICTED


@registry.register
class MemberIdentityIndexErased(DomainEvent):
    """The member's personal data was erased: forget their blind index, and every copy of it. Keyed by the member
    like the index it follows, so on the compacted restricted topic it replaces the index."""

    member_id: UUID
    channel: ClassVar[str] = RESTRICTED


@registry.register
class UnitUnionFoundingSuggested(DomainEvent):
    org_id: UUID  # the federation or joint union holding the members
    employer_credit_code: str
    employer_name: str | None = None
    active_members: int
    threshold: int

    def partition_key(self) -> str:
        return str(self.org_id)


@registry.register
class MembershipRetained(DomainEvent):
    """保留会籍: a member who retired, became unemployed or whose unit closed keeps membership, held by `org_id`
    (the former unit's union, or for a closed unit the higher-level union); retained members pay no dues."""

    member_id: UUID
    reason: str  # retired | unemployed | unit_closed
    org_id: UUID
    since: date


@registry.register
class MembershipRestored(DomainEvent):
    """恢复会籍: normal membership again, on re-employment (through a transfer, or by hand)."""

    member_id: UUID
    reason: str
    transfer_id: UUID | None = None


@registry.register
class MembershipLapsed(DomainEvent):
    """视为自动退会: staff decided, after six months unpaid, education and the grace period, that the member is regarded
    as having withdrawn (the dues service's case `case_id`). The membership ends."""

    member_id: UUID
    reason: str
    case_id: UUID | None = None
    decided_by: str


@registry.register
class WorkingCalendarLoaded(DomainEvent):
    """The State Council's notice of a year (国务院办公厅关于部分节假日安排的通知), loaded as the year's calendar:
    clocks are counted on it from now on, and the provisional ones still running are counted again."""

    year: int
    number: str  # 文号
    notice_published: date  # the notice's date
    title: str | None = None
    source: str | None = None
    festivals: list[FestivalArrangement]
    digest: str  # sha256 of the notice's content: the same notice loaded again is not a new load
    loaded_by: str
    loaded_at: datetime  # the clocks running then, and provisional on the year, were counted again
    replaces: str | None = None  # the number of the notice loaded for the year before this one
    package_differences: list[date] = Field(
        default_factory=list
    )  # days on which chinese-calendar disagrees, accepted by whoever loaded it

    def partition_key(self) -> str:
        return f"calendar-{self.year}"


@registry.register
class DeadlineRecounted(DomainEvent):
    """A provisional clock, still running, counted again on the notice just loaded, and its deadline moved. An
    application's is in its own stream; a member's request's (feedback owns the request) in the calendar's."""

    kind: str  # application | request
    item_id: UUID
    member_id: UUID
    org_id: UUID
    previous_deadline: datetime
    deadline: datetime
    clock: ClockCounted
    notice: str  # the number of the notice it was counted again on
