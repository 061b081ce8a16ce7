"""Retained membership (保留会籍) and the lapse as membership's deciders: retirement, unemployment, unit closure,
re-employment through a transfer, 内退 unchanged, the lapse recorded only on a staff decision."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.membership import domain
from services.membership.domain import Member, MemberStatus, Organization, OrgType
from services.membership.events import (
    MemberOrganizationChanged,
    MembershipLapsed,
    MembershipRestored,
    MembershipRetained,
)
from shared.errors import DomainError, InvalidInputError

DAY = date(2026, 3, 2)


def member(status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    return Member(uuid.uuid4(), "310115-00000001", uuid.uuid4(), status, date(2020, 1, 1))


def org(org_type: OrgType = OrgType.COUNTY) -> Organization:
    return Organization(uuid.uuid4(), org_type, "310115", domain.accepts_members(org_type))


def test_a_retiree_is_retained_at_the_former_units_union() -> None:
    m = member()
    events = domain.retain(m, "retired", None, holder_above=False, since=DAY)
    assert events == [MembershipRetained(member_id=m.member_id, reason="retired", org_id=m.org_id, since=DAY)]
    after = domain.evolve(m, events[0])
    assert isinstance(after, Member)
    assert after.status is MemberStatus.RETAINED
    assert after.org_id == m.org_id


def test_an_unemployed_member_is_retained_by_the_former_units_union_and_not_elsewhere() -> None:
    m = member()
    assert isinstance(domain.retain(m, "unemployed", None, False, DAY)[0], MembershipRetained)
    with pytest.raises(InvalidInputError):
        domain.retain(m, "unemployed", org(), True, DAY)


def test_when_the_unit_closes_the_higher_level_union_holds_the_membership() -> None:
    m, county = member(), org(OrgType.COUNTY)
    events = domain.retain(m, "unit_closed", county, holder_above=True, since=DAY)
    assert [type(e) for e in events] == [MembershipRetained, MemberOrganizationChanged]
    state: object = m
    for e in events:
        state = domain.evolve(state, e)  # type: ignore[arg-type]
    assert isinstance(state, Member)
    assert state.org_id == county.org_id
    assert state.status is MemberStatus.RETAINED
    with pytest.raises(InvalidInputError):
        domain.retain(m, "unit_closed", None, False, DAY)
    with pytest.raises(DomainError) as elsewhere:
        domain.retain(m, "unit_closed", org(OrgType.CITY), holder_above=False, since=DAY)
    assert elsewhere.value.code == "target_not_accepting"
    # or the township union of residence, which holds members
    assert domain.retain(m, "unit_closed", org(OrgType.TOWNSHIP), holder_above=False, since=DAY)


def test_internally_retired_staff_are_unchanged() -> None:
    with pytest.raises(DomainError) as refused:
        domain.retain(member(), "internal_retirement", None, False, DAY)
    assert refused.value.code == "not_retained"


def test_re_employment_restores_membership_through_the_transfer() -> None:
    m = member(MemberStatus.RETAINED)
    target, transfer_id = org(OrgType.ENTERPRISE), uuid.uuid4()
    events = domain.change_organization(m, target, transfer_id)
    assert [type(e) for e in events] == [MemberOrganizationChanged, MembershipRestored]
    state: object = m
    for e in events:
        state = domain.evolve(state, e)  # type: ignore[arg-type]
    assert isinstance(state, Member)
    assert state.status is MemberStatus.ACTIVE
    assert state.org_id == target.org_id
    assert domain.restore(m, "back at work") == [MembershipRestored(member_id=m.member_id, reason="back at work")]
    with pytest.raises(DomainError):
        domain.restore(member(), "not retained")


def test_only_an_active_member_is_retained() -> None:
    with pytest.raises(DomainError):
        domain.retain(member(MemberStatus.SUSPENDED), "retired", None, False, DAY)


def test_the_lapse_ends_the_membership_and_a_moot_one_changes_nothing() -> None:
    m, case_id = member(), uuid.uuid4()
    events = domain.lapse(m, case_id, "six months unpaid; refused after education", "staff:wang")
    assert [type(e) for e in events] == [MembershipLapsed]
    lapsed = domain.evolve(m, events[0])
    assert isinstance(lapsed, Member)
    assert lapsed.status is MemberStatus.LAPSED
    assert domain.lapse(lapsed, case_id, "again", "staff") == []  # a redelivered decision
    assert domain.lapse(member(MemberStatus.RETAINED), case_id, "moot", "staff") == []
    with pytest.raises(DomainError):
        domain.terminate(lapsed, "after a lapse")
    assert domain.erase_personal_data(lapsed)  # a lapsed person's data can be erased like a terminated one's
