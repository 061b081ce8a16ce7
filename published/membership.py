"""Membership's published language: its events as its consumers read them, a member's status, and what each of
membership's events does to it.

The rule every consumer follows (the directory, membership's own read models, dues, the card service, feedback's
requests): a status event sets the status its name says, and an ended membership (terminated, or lapsed: 视为自动退会)
stays ended whatever arrives after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from published.base import PublishedEvent, Vocabulary

SOURCE = "/union/membership"
TOPIC = "union.membership.v1"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETAINED = "retained"  # 保留会籍: retired, unemployed, unit closed: still a member, paying no dues
    LAPSED = "lapsed"  # 视为自动退会, after a staff decision on the dues service's six-month case
    TERMINATED = "terminated"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({MemberStatus.TERMINATED, MemberStatus.LAPSED})

# membership's event -> the status it leaves the member in
STATUS_AFTER: Mapping[str, MemberStatus] = {
    "MemberJoined": MemberStatus.ACTIVE,
    "MemberSuspended": MemberStatus.SUSPENDED,
    "MemberReinstated": MemberStatus.ACTIVE,
    "MemberTerminated": MemberStatus.TERMINATED,
    "MembershipRetained": MemberStatus.RETAINED,
    "MembershipRestored": MemberStatus.ACTIVE,
    "MembershipLapsed": MemberStatus.LAPSED,
}

# the events that change a member's status after joining (joining is the member's first event)
STATUS_CHANGES: Mapping[str, MemberStatus] = {name: s for name, s in STATUS_AFTER.items() if name != "MemberJoined"}

# a member's move to another organisation (a transfer completed, or retained membership held elsewhere)
MOVED = "MemberOrganizationChanged"

# every event about a member that a consumer following members needs: the status events and the move
MEMBER_EVENTS = frozenset({*STATUS_AFTER, MOVED})


def next_status(current: MemberStatus | None, event_name: str) -> MemberStatus | None:
    """The member's status after `event_name` (None before they joined); an ended membership stays ended."""
    if current is not None and current.ended:
        return current
    return STATUS_AFTER.get(event_name, current)


# --- the events, as published (membership's own classes add what it keeps to itself: services/membership/events.py)


class MemberEvent(PublishedEvent):
    """An event about one member (the Kafka key, and every reader's way to them)."""

    member_id: UUID


class OrganizationRegistered(PublishedEvent):
    org_id: UUID
    name: str
    type: str
    subtype: str | None = None
    parent_id: UUID | None = None
    region_code: str
    credit_code: str | None = None
    industry: str | None = None
    accepts_members: bool


class OrganizationDissolved(PublishedEvent):
    org_id: UUID
    reason: str


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


class ApplicationSubmitted(PublishedEvent):
    application_id: UUID
    member_id: UUID  # reserved at submission: the person's data key is named after it
    org_id: UUID
    employer_credit_code: str | None = None
    employer_name: str | None = None
    employment_type: str
    household_type: str
    # the office's clock: contact within so many working days (shared.workdays), and what it was counted on; a
    # provisional clock is counted again when its year's notice is loaded (DeadlineRecounted). Events recorded
    # before provisional clocks have neither where the calendar of the year was not known
    respond_by: datetime | None = None
    clock: ClockCounted | None = None


class ApplicationOverdue(PublishedEvent):
    """The application's clock ran out before anyone reviewed it: it joins the parent organisation's queue."""

    application_id: UUID
    member_id: UUID
    org_id: UUID
    respond_by: datetime
    escalated_to_org_id: UUID | None = None  # the parent organisation; None for a root organisation


class ApplicationApproved(PublishedEvent):
    application_id: UUID
    member_id: UUID
    member_no: str
    org_id: UUID
    reviewer: str


class ApplicationRejected(PublishedEvent):
    application_id: UUID
    member_id: UUID
    org_id: UUID
    reviewer: str
    reason: str


class MemberJoined(MemberEvent):
    member_no: str
    org_id: UUID
    joined_at: date
    application_id: UUID | None = None
    imported: bool = False
    employer_credit_code: str | None = None
    employer_name: str | None = None
    employment_type: str
    household_type: str


class MemberSuspended(MemberEvent):
    reason: str


class MemberReinstated(MemberEvent):
    reason: str


class MemberTerminated(MemberEvent):
    reason: str


class MemberOrganizationChanged(MemberEvent):
    from_org_id: UUID
    to_org_id: UUID
    transfer_id: UUID | None = None


class PersonalDataErased(MemberEvent):
    """The member's personal data was erased: whatever a reader holds of it goes too."""


class MemberIdentityIndexed(MemberEvent):
    """The member's identity-number blind index, for the services that match people by identity number (transfer,
    for regional employment changes). Only on the restricted topic, which regional systems cannot read."""

    id_blind_index: str


class MemberIdentityIndexErased(MemberEvent):
    """The member's personal data was erased: forget their blind index, and every copy of it. Keyed by the member
    like the index it follows, so on the compacted restricted topic it replaces the index."""


class UnitUnionFoundingSuggested(PublishedEvent):
    org_id: UUID  # the federation or joint union holding the members
    employer_credit_code: str
    employer_name: str | None = None
    active_members: int
    threshold: int


class MembershipRetained(MemberEvent):
    """保留会籍: a member who retired, became unemployed or whose unit closed keeps membership, held by `org_id`
    (the former unit's union, or for a closed unit the higher-level union); retained members pay no dues."""

    reason: str  # retired | unemployed | unit_closed
    org_id: UUID
    since: date


class MembershipRestored(MemberEvent):
    """恢复会籍: normal membership again, on re-employment (through a transfer, or by hand)."""

    reason: str
    transfer_id: UUID | None = None


class MembershipLapsed(MemberEvent):
    """视为自动退会: staff decided, after six months unpaid, education and the grace period, that the member is regarded
    as having withdrawn (the dues service's case `case_id`). The membership ends."""

    reason: str
    case_id: UUID | None = None
    decided_by: str


class WorkingCalendarLoaded(PublishedEvent):
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


class DeadlineRecounted(PublishedEvent):
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


vocabulary = Vocabulary(
    SOURCE,
    [
        OrganizationRegistered,
        OrganizationDissolved,
        ApplicationSubmitted,
        ApplicationOverdue,
        ApplicationApproved,
        ApplicationRejected,
        MemberJoined,
        MemberSuspended,
        MemberReinstated,
        MemberTerminated,
        MemberOrganizationChanged,
        PersonalDataErased,
        MemberIdentityIndexed,
        MemberIdentityIndexErased,
        UnitUnionFoundingSuggested,
        MembershipRetained,
        MembershipRestored,
        MembershipLapsed,
        WorkingCalendarLoaded,
        DeadlineRecounted,
    ],
)
decode = vocabulary.decode
