"""Membership's published status rule, and what each consuming service does with every status it can give."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from published import membership
from published.membership import MemberStatus
from services.dues.consumers import STATUS as DUES_STATUS
from services.feedback import domain as feedback
from services.membership.events import registry as membership_events
from services.servicecard import domain as servicecard
from services.servicecard.domain import CardStatus, MemberFact
from shared.errors import DomainError
from unionctl.asyncapi import published_as

A, S, R, L, T = (
    MemberStatus.ACTIVE,
    MemberStatus.SUSPENDED,
    MemberStatus.RETAINED,
    MemberStatus.LAPSED,
    MemberStatus.TERMINATED,
)
EVENTS = [
    "MemberJoined",
    "MemberSuspended",
    "MemberReinstated",
    "MemberTerminated",
    "MembershipRetained",
    "MembershipRestored",
    "MembershipLapsed",
    "MemberOrganizationChanged",
]
# status before (None: not joined yet) -> the status after each event above, in that order
TABLE = {
    None: [A, S, A, T, R, A, L, None],
    A: [A, S, A, T, R, A, L, A],
    S: [A, S, A, T, R, A, L, S],
    R: [A, S, A, T, R, A, L, R],
    L: [L, L, L, L, L, L, L, L],  # 视为自动退会 is an end: nothing brings the member back (they join again)
    T: [T, T, T, T, T, T, T, T],
}


@pytest.mark.parametrize("before", list(TABLE), ids=str)
def test_every_membership_event_against_every_status(before: MemberStatus | None) -> None:
    assert [membership.next_status(before, event) for event in EVENTS] == TABLE[before]


def test_the_vocabulary_names_membership_s_own_events() -> None:
    registered = {cls.event_name() for cls in membership_events.classes()}
    assert set(EVENTS) <= registered
    assert set(EVENTS) == membership.MEMBER_EVENTS
    assert set(MemberStatus) == {A, S, R, L, T}


def test_dues_follows_every_status_change_as_published() -> None:
    assert {name: DUES_STATUS[name] for name in membership.STATUS_CHANGES} == {
        "MemberSuspended": "suspended",
        "MemberReinstated": "active",
        "MemberTerminated": "terminated",
        "MembershipRetained": "retained",
        "MembershipRestored": "active",
        "MembershipLapsed": "lapsed",
    }
    assert DUES_STATUS["MemberOrganizationChanged"] is None


ORG = uuid.uuid4()


def card_after(*names: str) -> CardStatus | None:
    """The card the card service keeps for a member whose membership events were `names`, in order."""
    facts = [
        MemberFact(sequence=i + 1, arrival=i, name=name, org_id=ORG, member_no="M1")
        for i, name in enumerate(("MemberJoined", *names))
    ]
    member_id, card = uuid.uuid4(), None
    for step in range(1, len(facts) + 1):  # the card follows each event as it arrives
        state = servicecard.fold_member(facts[:step])
        for event in servicecard.follow_member(card, member_id, state, "6200000000000000000", datetime.now(UTC)):
            card = servicecard.evolve_card(card, event)
    return None if card is None else card.status


@pytest.mark.parametrize(
    ("events", "card"),
    [
        ((), CardStatus.ACTIVE),
        (("MemberSuspended",), CardStatus.FROZEN),
        (("MemberSuspended", "MemberReinstated"), CardStatus.ACTIVE),
        (("MembershipRetained",), CardStatus.ACTIVE),  # 保留会籍: still a member, the card still works
        (("MemberSuspended", "MembershipRetained"), CardStatus.ACTIVE),
        (("MembershipRetained", "MembershipRestored"), CardStatus.ACTIVE),
        (("MembershipLapsed",), CardStatus.REVOKED),  # 视为自动退会: the member has left
        (("MembershipLapsed", "MembershipRestored"), CardStatus.REVOKED),
        (("MemberTerminated",), CardStatus.REVOKED),
        (("MemberTerminated", "MemberReinstated"), CardStatus.REVOKED),
    ],
)
def test_the_card_follows_each_status(events: tuple[str, ...], card: CardStatus) -> None:
    assert card_after(*events) is card


def test_every_status_has_a_card() -> None:
    assert set(servicecard.CARD_FOR) == set(MemberStatus)


@pytest.mark.parametrize("status", list(MemberStatus), ids=str)
def test_a_request_may_be_raised_by_every_member_whose_membership_has_not_ended(status: MemberStatus) -> None:
    cmd = feedback.RaiseRequest(uuid.uuid4(), uuid.uuid4(), "rights", "help")
    member = feedback.MemberRef(cmd.member_id, ORG, status)
    if status in {L, T}:
        with pytest.raises(DomainError) as refused:
            feedback.raise_request(cmd, member)
        assert refused.value.code == "member_terminated"
    else:
        assert [type(e).__name__ for e in feedback.raise_request(cmd, member)] == ["RequestRaised"]


def test_membership_publishes_exactly_its_published_language() -> None:
    """Each of membership's published events is its published class and what it keeps to itself, nothing else."""
    published = {}
    for cls in membership_events.classes():
        public = published_as(cls)
        assert public is membership.vocabulary.events[cls.event_name()], cls
        assert set(cls.model_fields) - cls.private_fields == set(public.model_fields), cls
        published[cls.event_name()] = public
    assert published == dict(membership.vocabulary.events)


def test_a_reader_ignores_what_it_does_not_know_and_refuses_what_breaks_the_contract() -> None:
    member_id = uuid.uuid4()
    newer = {"member_id": str(member_id), "reason": "r", "added_in_a_later_release": 1}
    assert membership.decode("MemberSuspended", newer) == membership.MemberSuspended(member_id=member_id, reason="r")
    assert membership.decode("SomethingNewer", newer) is None
    with pytest.raises(ValueError, match="member_id"):
        membership.decode("MemberSuspended", {"member_id": "not a member id", "reason": "r"})
