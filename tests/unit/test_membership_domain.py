"""Membership's rules as deciders: given events, when a command, then events or a refusal."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.membership import domain
from services.membership.events import (
    ApplicationSubmitted,
    MemberIdentityIndexed,
    MemberIdentityIndexErased,
    MemberJoined,
    MemberOrganizationChanged,
    MemberSuspended,
    MemberTerminated,
    OrganizationRegistered,
    PersonalDataErased,
    UnitUnionFoundingSuggested,
)
from shared.errors import DomainError, InvalidInputError

TODAY = date(2026, 11, 25)


def registered(org_type: str, **extra: object) -> OrganizationRegistered:
    return OrganizationRegistered(
        org_id=uuid.uuid4(),
        name="u",
        type=org_type,
        region_code="310115",
        accepts_members=domain.accepts_members(domain.OrgType(org_type)),
        **extra,
    )


def org(org_type: str = "township") -> domain.Organization:
    state = domain.fold([registered(org_type)])
    assert isinstance(state, domain.Organization)
    return state


def submitted(org_id: uuid.UUID) -> ApplicationSubmitted:
    return ApplicationSubmitted(
        application_id=uuid.uuid4(),
        member_id=uuid.uuid4(),
        org_id=org_id,
        id_blind_index="b",
        name_enc="n",
        id_number_enc="i",
        phone_enc="p",
        employment_type="regular",
        household_type="urban",
    )


def joined_event(org_id: uuid.UUID | None = None) -> MemberJoined:
    return MemberJoined(
        member_id=uuid.uuid4(),
        member_no="310115-00000001",
        org_id=org_id or uuid.uuid4(),
        joined_at=TODAY,
        id_blind_index="b",
        name_enc="n",
        id_number_enc="i",
        phone_enc="p",
        employment_type="regular",
        household_type="urban",
    )


def member(*later: object) -> domain.Member:
    state = domain.fold([joined_event(), *later])  # type: ignore[list-item]
    assert isinstance(state, domain.Member)
    return state


@pytest.mark.parametrize("org_type", [t.value for t in domain.OrgType])
def test_only_grassroots_unions_hold_members(org_type: str) -> None:
    holds = org_type in {"township", "village", "enterprise", "joint", "federation"}
    assert domain.accepts_members(domain.OrgType(org_type)) is holds
    if holds:
        domain.ensure_can_apply(org(org_type), already_member=False)
    else:
        with pytest.raises(DomainError, match="does not hold members") as refused:
            domain.ensure_can_apply(org(org_type), already_member=False)
        assert refused.value.code == "target_not_accepting"


def test_join_once_refuses_a_person_who_is_or_was_a_member() -> None:
    with pytest.raises(DomainError) as refused:
        domain.ensure_can_apply(org(), already_member=True)
    assert refused.value.code == "already_member"


def _employer(org_type: str = "federation", active: int = 3, done: bool = False) -> domain.EmployerCount:
    return domain.EmployerCount(uuid.uuid4(), org_type, "91310115MA1K3YJ12X", "a factory", active, done)


def test_a_federation_holding_enough_workers_of_one_employer_suggests_founding_its_union_once() -> None:
    [suggested] = domain.suggest_founding(_employer(active=3), threshold=3)
    assert isinstance(suggested, UnitUnionFoundingSuggested)
    assert (suggested.active_members, suggested.threshold, suggested.employer_name) == (3, 3, "a factory")
    assert domain.suggest_founding(_employer(active=2), threshold=3) == []  # not yet
    assert domain.suggest_founding(_employer(active=9, done=True), threshold=3) == []  # once, or founded already
    assert domain.suggest_founding(_employer("joint", active=3), threshold=3) != []
    for holder in ("township", "village", "enterprise"):  # they hold members, but a unit union is not theirs to ask
        assert domain.suggest_founding(_employer(holder, active=50), threshold=3) == []


def test_approval_makes_a_member_with_the_applications_data_and_only_once() -> None:
    township = org()
    application = submitted(township.org_id)
    state = domain.fold([application])
    assert isinstance(state, domain.Application)
    app_events, member_events = domain.approve_application(state, township, False, "staff", "310115-00000009", TODAY)
    [indexed, joined] = member_events
    assert isinstance(joined, MemberJoined)
    assert (joined.member_id, joined.member_no, joined.joined_at) == (application.member_id, "310115-00000009", TODAY)
    assert joined.id_number_enc == application.id_number_enc
    # the blind index: kept in the store, never on the public topic; only on the restricted one, for transfer
    assert "id_blind_index" in joined.private_fields
    assert "id_blind_index" not in joined.public_data()
    assert isinstance(indexed, MemberIdentityIndexed)
    assert (indexed.member_id, indexed.id_blind_index) == (joined.member_id, application.id_blind_index)
    assert (joined.channel, indexed.channel) == ("public", "restricted")
    assert isinstance(domain.fold(member_events), domain.Member)
    approved = domain.fold([application, *app_events])
    assert isinstance(approved, domain.Application)
    with pytest.raises(DomainError) as again:
        domain.approve_application(approved, township, False, "staff", "x", TODAY)
    assert again.value.code == "application_not_pending"
    with pytest.raises(DomainError) as twice:
        domain.approve_application(state, township, True, "staff", "x", TODAY)
    assert twice.value.code == "already_member"


@pytest.mark.parametrize(
    ("org_type", "extra", "field"),
    [
        ("joint", {}, "subtype"),
        ("federation", {"subtype": "building"}, "subtype"),
        ("township", {"subtype": "park"}, "subtype"),
        ("enterprise", {}, "credit_code"),
        ("national", {"parent_id": uuid.uuid4()}, "parent_id"),
    ],
)
def test_invalid_organisations_name_the_field(org_type: str, extra: dict[str, object], field: str) -> None:
    cmd = domain.RegisterOrganization(
        org_id=uuid.uuid4(), name="u", type=domain.OrgType(org_type), region_code="310115", **extra
    )  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as refused:
        domain.register_organization(cmd, org("county") if "parent_id" in extra else None)
    assert refused.value.field == field


def test_dissolution_only_when_empty() -> None:
    with pytest.raises(DomainError) as refused:
        domain.dissolve_organization(org(), 1, "merged")
    assert refused.value.code == "has_members"
    [event] = domain.dissolve_organization(org(), 0, "merged")
    dissolved = domain.fold([registered("township"), event])
    assert isinstance(dissolved, domain.Organization)
    assert dissolved.dissolved


ACTIONS = {"suspend": domain.suspend, "reinstate": domain.reinstate, "terminate": domain.terminate}


@given(st.lists(st.sampled_from(sorted(ACTIONS)), max_size=12))
def test_member_states_follow_the_state_machine(actions: list[str]) -> None:
    state = member()
    for action in actions:
        before = state.status
        allowed = {
            "suspend": before is domain.MemberStatus.ACTIVE,
            "reinstate": before is domain.MemberStatus.SUSPENDED,
            "terminate": before is not domain.MemberStatus.TERMINATED,
        }[action]
        try:
            events = ACTIONS[action](state, "r")
        except DomainError:
            assert not allowed
            continue
        assert allowed
        folded = domain.evolve(state, events[0])
        assert isinstance(folded, domain.Member)
        state = folded
    assert state.member_no == "310115-00000001"  # whatever happens, the number stays


def test_a_member_moves_keeping_number_and_join_date_and_a_repeat_changes_nothing() -> None:
    target = org("federation")
    before = member()
    [moved] = domain.change_organization(before, target, uuid.uuid4())
    after = domain.evolve(before, moved)
    assert isinstance(after, domain.Member)
    assert (after.org_id, after.member_no, after.joined_at) == (target.org_id, before.member_no, before.joined_at)
    assert domain.change_organization(after, target, None) == []
    with pytest.raises(DomainError) as refused:
        domain.change_organization(member(MemberTerminated(member_id=before.member_id, reason="x")), target, None)
    assert refused.value.code == "member_terminated"
    assert isinstance(moved, MemberOrganizationChanged)


def test_personal_data_is_erased_after_the_membership_ends_once() -> None:
    with pytest.raises(DomainError) as refused:
        domain.erase_personal_data(member(MemberSuspended(member_id=uuid.uuid4(), reason="x")))
    assert refused.value.code == "member_not_terminated"
    ended = member(MemberTerminated(member_id=uuid.uuid4(), reason="x"))
    [forget, erased] = domain.erase_personal_data(ended)
    assert isinstance(erased, PersonalDataErased)
    assert isinstance(forget, MemberIdentityIndexErased)  # on the restricted topic, replacing the index
    assert forget.member_id == erased.member_id
    assert domain.erase_personal_data(member(MemberTerminated(member_id=uuid.uuid4(), reason="x"), erased)) == []
