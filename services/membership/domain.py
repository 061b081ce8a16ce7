"""Membership's rules as deciders: decide(command, state) -> events; evolve(state, event) -> state."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from published.membership import ENDED, MemberStatus
from services.membership.events import (
    ApplicationApproved,
    ApplicationOverdue,
    ApplicationRejected,
    ApplicationSubmitted,
    ClockCounted,
    DeadlineRecounted,
    MemberIdentityIndexed,
    MemberIdentityIndexErased,
    MemberJoined,
    MemberOrganizationChanged,
    MemberReinstated,
    MembershipLapsed,
    MembershipRestored,
    MembershipRetained,
    MemberSuspended,
    MemberTerminated,
    OrganizationDissolved,
    OrganizationRegistered,
    PersonalDataErased,
    UnitUnionFoundingSuggested,
)
from shared.errors import DomainError, InvalidInputError
from shared.events import DomainEvent
from shared.workdays import Clock


class OrgType(StrEnum):
    NATIONAL = "national"
    PROVINCIAL = "provincial"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    ENTERPRISE = "enterprise"
    JOINT = "joint"
    FEDERATION = "federation"


class EmploymentType(StrEnum):
    REGULAR = "regular"
    DISPATCHED = "dispatched"
    FLEXIBLE = "flexible"
    PLATFORM = "platform"


class HouseholdType(StrEnum):
    URBAN = "urban"
    RURAL = "rural"


# a member's status is the published language's (its consumers follow the same rule): published/membership.py


SUBTYPES: dict[OrgType, frozenset[str]] = {
    OrgType.JOINT: frozenset({"building", "park", "district", "market"}),
    OrgType.FEDERATION: frozenset({"regional", "industry"}),
}
# the leading federations of trade unions lead; grassroots unions hold members
_HOLD_MEMBERS = frozenset({OrgType.TOWNSHIP, OrgType.VILLAGE, OrgType.ENTERPRISE, OrgType.JOINT, OrgType.FEDERATION})


def accepts_members(org_type: OrgType) -> bool:
    return org_type in _HOLD_MEMBERS


# --- organisations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    org_id: UUID
    type: OrgType
    region_code: str
    accepts_members: bool
    dissolved: bool = False
    industry: str | None = None
    parent_id: UUID | None = None


@dataclass(frozen=True)
class RegisterOrganization:
    org_id: UUID
    name: str
    type: OrgType
    region_code: str
    subtype: str | None = None
    parent_id: UUID | None = None
    credit_code: str | None = None
    industry: str | None = None


def register_organization(cmd: RegisterOrganization, parent: Organization | None) -> list[DomainEvent]:
    allowed = SUBTYPES.get(cmd.type, frozenset())
    if cmd.subtype is not None and cmd.subtype not in allowed:
        reason = (
            f"a {cmd.type} union has no subtype"
            if not allowed
            else f"subtype of a {cmd.type} union must be one of {', '.join(sorted(allowed))}"
        )
        raise InvalidInputError("subtype", reason)
    if allowed and cmd.subtype is None:
        raise InvalidInputError("subtype", f"a {cmd.type} union needs a subtype: {', '.join(sorted(allowed))}")
    if cmd.type is OrgType.ENTERPRISE and not cmd.credit_code:
        raise InvalidInputError(
            "credit_code", "an enterprise union is tied to its employer's unified social credit code"
        )
    if cmd.type is OrgType.NATIONAL and cmd.parent_id is not None:
        raise InvalidInputError("parent_id", "the national federation has no parent")
    if cmd.parent_id is not None:
        if parent is None:
            raise InvalidInputError("parent_id", f"organisation {cmd.parent_id} does not exist")
        if parent.dissolved:
            raise DomainError("org_dissolved", "the parent organisation is dissolved")
    return [
        OrganizationRegistered(
            org_id=cmd.org_id,
            name=cmd.name,
            type=cmd.type,
            subtype=cmd.subtype,
            parent_id=cmd.parent_id,
            region_code=cmd.region_code,
            credit_code=cmd.credit_code,
            industry=cmd.industry,
            accepts_members=accepts_members(cmd.type),
        )
    ]


def dissolve_organization(org: Organization, active_members: int, reason: str) -> list[DomainEvent]:
    if org.dissolved:
        raise DomainError("org_dissolved", "the organisation is already dissolved")
    if active_members > 0:
        raise DomainError("has_members", f"the organisation still holds {active_members} active members")
    return [OrganizationDissolved(org_id=org.org_id, reason=reason)]


def ensure_accepts_members(org: Organization) -> None:
    if org.dissolved:
        raise DomainError("org_dissolved", "the organisation is dissolved")
    if not org.accepts_members:
        raise DomainError(
            "target_not_accepting", f"a {org.type} federation leads grassroots unions and does not hold members itself"
        )


# --- applications --------------------------------------------------------------------------------------


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Application:
    application_id: UUID
    member_id: UUID
    org_id: UUID
    status: ApplicationStatus
    submitted: ApplicationSubmitted
    overdue: bool = False
    respond_by: datetime | None = None  # the clock as last counted: at submission, or again on the year's notice


def ensure_can_apply(org: Organization, already_member: bool) -> None:
    ensure_accepts_members(org)
    if already_member:
        raise DomainError("already_member", "this person is or was a member: membership is once in a lifetime")


def approve_application(
    app: Application, org: Organization, already_member: bool, reviewer: str, member_no: str, today: date
) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """Events for the application's stream and for the new member's stream."""
    if app.status is not ApplicationStatus.SUBMITTED:
        raise DomainError("application_not_pending", f"the application is already {app.status}")
    ensure_can_apply(org, already_member)
    s = app.submitted
    joined = MemberJoined(
        member_id=app.member_id,
        member_no=member_no,
        org_id=app.org_id,
        joined_at=today,
        application_id=app.application_id,
        id_blind_index=s.id_blind_index,
        name_enc=s.name_enc,
        id_number_enc=s.id_number_enc,
        phone_enc=s.phone_enc,
        employer_credit_code=s.employer_credit_code,
        employer_name=s.employer_name,
        employment_type=s.employment_type,
        household_type=s.household_type,
    )
    approved = ApplicationApproved(
        application_id=app.application_id,
        member_id=app.member_id,
        member_no=member_no,
        org_id=app.org_id,
        reviewer=reviewer,
    )
    return [approved], joined_events(joined)


def joined_events(joined: MemberJoined) -> list[DomainEvent]:
    """A new member's stream begins: their blind index (for the restricted topic), then the join (public). The
    index comes first, so the command's position token (its highest public position) covers it too, for the
    services that read both topics."""
    return [MemberIdentityIndexed(member_id=joined.member_id, id_blind_index=joined.id_blind_index), joined]


def reject_application(app: Application, reviewer: str, reason: str) -> list[DomainEvent]:
    if app.status is not ApplicationStatus.SUBMITTED:
        raise DomainError("application_not_pending", f"the application is already {app.status}")
    return [
        ApplicationRejected(
            application_id=app.application_id,
            member_id=app.member_id,
            org_id=app.org_id,
            reviewer=reviewer,
            reason=reason,
        )
    ]


def recount_deadline(app: Application, clock: Clock, notice: str, now: datetime) -> list[DomainEvent]:
    """A pending application's provisional clock counted again on a notice: recorded where its deadline moves. A
    clock that already ran out (or was recorded as run out) is never moved."""
    previous = app.respond_by
    if app.status is not ApplicationStatus.SUBMITTED or app.overdue or previous is None or previous <= now:
        return []
    if clock.deadline == previous:
        return []
    return [
        DeadlineRecounted(
            kind="application",
            item_id=app.application_id,
            member_id=app.member_id,
            org_id=app.org_id,
            previous_deadline=previous,
            deadline=clock.deadline,
            clock=ClockCounted.model_validate(clock.as_json()),
            notice=notice,
        )
    ]


def mark_overdue(app: Application, respond_by: datetime, now: datetime, parent_id: UUID | None) -> list[DomainEvent]:
    """Once, when the clock of a pending application has run out; nothing otherwise (a decision came first)."""
    if app.status is not ApplicationStatus.SUBMITTED or app.overdue or now < respond_by:
        return []
    return [
        ApplicationOverdue(
            application_id=app.application_id,
            member_id=app.member_id,
            org_id=app.org_id,
            respond_by=respond_by,
            escalated_to_org_id=parent_id,
        )
    ]


# --- members -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    member_id: UUID
    member_no: str
    org_id: UUID
    status: MemberStatus
    joined_at: date
    erased: bool = False


def suspend(member: Member, reason: str) -> list[DomainEvent]:
    if member.status is not MemberStatus.ACTIVE:
        raise DomainError("member_not_active", f"only an active member can be suspended; this one is {member.status}")
    return [MemberSuspended(member_id=member.member_id, reason=reason)]


def reinstate(member: Member, reason: str) -> list[DomainEvent]:
    if member.status is not MemberStatus.SUSPENDED:
        raise DomainError(
            "member_not_suspended", f"only a suspended member can be reinstated; this one is {member.status}"
        )
    return [MemberReinstated(member_id=member.member_id, reason=reason)]


def terminate(member: Member, reason: str) -> list[DomainEvent]:
    if member.status in ENDED:
        raise DomainError("member_terminated", f"the membership already ended ({member.status})")
    return [MemberTerminated(member_id=member.member_id, reason=reason)]


def change_organization(member: Member, to: Organization, transfer_id: UUID | None) -> list[DomainEvent]:
    if member.org_id == to.org_id:
        return []  # already there: a redelivered completion changes nothing
    if member.status in ENDED:
        raise DomainError("member_terminated", f"a membership that ended ({member.status}) does not move")
    ensure_accepts_members(to)
    moved: list[DomainEvent] = [
        MemberOrganizationChanged(
            member_id=member.member_id, from_org_id=member.org_id, to_org_id=to.org_id, transfer_id=transfer_id
        )
    ]
    if member.status is MemberStatus.RETAINED:  # re-employment: the transfer to the new unit's union restores it
        moved.append(
            MembershipRestored(member_id=member.member_id, reason="re-employed: transferred", transfer_id=transfer_id)
        )
    return moved


def erase_personal_data(member: Member) -> list[DomainEvent]:
    if member.erased:
        return []
    if member.status not in ENDED:
        raise DomainError(
            "member_not_terminated", "personal data is erased after the membership ends; terminate it first"
        )
    # the restricted topic's erasure first, like the index at the join: the command's token covers both
    return [MemberIdentityIndexErased(member_id=member.member_id), PersonalDataErased(member_id=member.member_id)]


# --- evolve --------------------------------------------------------------------------------------------

State = Organization | Application | Member | None


def fold(events: list[DomainEvent]) -> State:
    state: State = None
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: State, event: DomainEvent) -> State:  # noqa: PLR0911, PLR0912, C901 - one arm per event type
    match event:
        case OrganizationRegistered():
            return Organization(
                event.org_id,
                OrgType(event.type),
                event.region_code,
                event.accepts_members,
                industry=event.industry,
                parent_id=event.parent_id,
            )
        case OrganizationDissolved() if isinstance(state, Organization):
            return replace(state, dissolved=True)
        case ApplicationSubmitted():
            return Application(
                event.application_id,
                event.member_id,
                event.org_id,
                ApplicationStatus.SUBMITTED,
                event,
                respond_by=event.respond_by,
            )
        case DeadlineRecounted() if isinstance(state, Application):
            return replace(state, respond_by=event.deadline)
        case ApplicationOverdue() if isinstance(state, Application):
            return replace(state, overdue=True)
        case ApplicationApproved() if isinstance(state, Application):
            return replace(state, status=ApplicationStatus.APPROVED)
        case ApplicationRejected() if isinstance(state, Application):
            return replace(state, status=ApplicationStatus.REJECTED)
        case MemberJoined():
            return Member(event.member_id, event.member_no, event.org_id, MemberStatus.ACTIVE, event.joined_at)
        case MemberSuspended() if isinstance(state, Member):
            return replace(state, status=MemberStatus.SUSPENDED)
        case MemberReinstated() if isinstance(state, Member):
            return replace(state, status=MemberStatus.ACTIVE)
        case MemberTerminated() if isinstance(state, Member):
            return replace(state, status=MemberStatus.TERMINATED)
        case MemberOrganizationChanged() if isinstance(state, Member):
            return replace(state, org_id=event.to_org_id)
        case PersonalDataErased() if isinstance(state, Member):
            return replace(state, erased=True)
        case MembershipRetained() if isinstance(state, Member):
            return replace(state, status=MemberStatus.RETAINED, org_id=event.org_id)
        case MembershipRestored() if isinstance(state, Member):
            return replace(state, status=MemberStatus.ACTIVE)
        case MembershipLapsed() if isinstance(state, Member):
            return replace(state, status=MemberStatus.LAPSED)
    return state


# --- founding a unit union -----------------------------------------------------------------------------------

FOUNDING_HOLDERS = frozenset({"federation", "joint"})  # the organisations that hold members while a unit has no union


@dataclass(frozen=True)
class EmployerCount:
    """What the store says about one employer's workers held by one organisation, right after a member came."""

    org_id: UUID
    org_type: str
    employer_credit_code: str
    employer_name: str | None
    active_members: int
    suggested_or_founded: bool  # suggested there already, or the employer has an active union of its own


def suggest_founding(count: EmployerCount, threshold: int) -> list[DomainEvent]:
    """A federation or joint union holding `threshold` active members of one employer suggests, once, that the
    employer found its own union (单位建会)."""
    if count.org_type not in FOUNDING_HOLDERS or count.active_members < threshold or count.suggested_or_founded:
        return []
    return [
        UnitUnionFoundingSuggested(
            org_id=count.org_id,
            employer_credit_code=count.employer_credit_code,
            employer_name=count.employer_name,
            active_members=count.active_members,
            threshold=threshold,
        )
    ]


# --- retained membership (保留会籍) and the lapse --------------------------------------------------------
# 工会会员会籍管理办法 (全总, 2016), 会籍保留; 北京市工会会员会籍管理实施办法(试行) (2020): a member who retires (early
# retirement included) keeps membership at the former unit's union; an unemployed member is retained by the former
# unit's union; when the unit closes or goes bankrupt, membership is held by the unit union's higher-level union (or
# the township/community union of residence: 全总 2000 暂行规定 六); internally retired staff (内部退养, 内退) are
# unchanged. Re-employment restores normal membership through a transfer to the new unit's union (恢复会籍).


class RetentionReason(StrEnum):
    RETIRED = "retired"
    UNEMPLOYED = "unemployed"
    UNIT_CLOSED = "unit_closed"


INTERNAL_RETIREMENT = "internal_retirement"


def retain(
    member: Member, reason: str, holder: Organization | None, holder_above: bool, since: date
) -> list[DomainEvent]:
    """`holder`: who holds the membership; for a closed unit the higher-level union (`holder_above`: it is above the
    member's organisation) or a union of residence that holds members; otherwise the member's own union."""
    if reason == INTERNAL_RETIREMENT:
        raise DomainError("not_retained", "internally retired staff (内退) keep their membership unchanged")
    try:
        why = RetentionReason(reason)
    except ValueError:
        raise InvalidInputError("reason", f"one of {', '.join(r.value for r in RetentionReason)}") from None
    if member.status is not MemberStatus.ACTIVE:
        raise DomainError("member_not_active", f"only an active member is retained; this one is {member.status}")
    if why is not RetentionReason.UNIT_CLOSED:
        if holder is not None and holder.org_id != member.org_id:
            raise InvalidInputError("held_by_org_id", f"a {why} member is retained by their own union")
        return [MembershipRetained(member_id=member.member_id, reason=why, org_id=member.org_id, since=since)]
    if holder is None:
        raise InvalidInputError("held_by_org_id", "a closed unit's members are held by its higher-level union: name it")
    if holder.dissolved:
        raise DomainError("org_dissolved", "the holding organisation is dissolved")
    if not holder_above and not holder.accepts_members:
        raise DomainError(
            "target_not_accepting", "the holder is the unit union's higher-level union, or a union that holds members"
        )
    events: list[DomainEvent] = [
        MembershipRetained(member_id=member.member_id, reason=why, org_id=holder.org_id, since=since)
    ]
    if holder.org_id != member.org_id:
        events.append(
            MemberOrganizationChanged(member_id=member.member_id, from_org_id=member.org_id, to_org_id=holder.org_id)
        )
    return events


def restore(member: Member, reason: str) -> list[DomainEvent]:
    """Restored by hand (back at the same union); re-employment elsewhere restores through a transfer."""
    if member.status is not MemberStatus.RETAINED:
        raise DomainError("member_not_retained", f"only a retained membership is restored; this one is {member.status}")
    return [MembershipRestored(member_id=member.member_id, reason=reason)]


def lapse(member: Member, case_id: UUID | None, reason: str, decided_by: str) -> list[DomainEvent]:
    """Record the staff decision (never a timer's) that the member is regarded as having withdrawn. A decision that
    reaches a membership since retained or ended is moot: membership owns the status, and it has moved on."""
    if member.status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        return []
    return [MembershipLapsed(member_id=member.member_id, reason=reason, case_id=case_id, decided_by=decided_by)]
