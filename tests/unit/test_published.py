"""Membership's published status rule, and what each consuming service does with every status it can give; every
producer publishes exactly its published language."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import cast

import pytest
from pydantic import ValidationError

from published import dues, membership, transfer
from published import feedback as feedback_language
from published import servicecard as servicecard_language
from published.base import Vocabulary
from published.membership import MemberStatus
from services.dues.consumers import STATUS as DUES_STATUS
from services.dues.events import registry as dues_events
from services.feedback import domain as feedback
from services.feedback import projections as feedback_projections
from services.feedback.events import registry as feedback_events
from services.membership import queue as work_queue
from services.membership.events import registry as membership_events
from services.servicecard import domain as servicecard
from services.servicecard.domain import CardStatus, MemberFact
from services.servicecard.events import registry as servicecard_events
from services.transfer.events import registry as transfer_events
from shared.errors import DomainError
from shared.events import DomainEvent, EventRegistry
from shared.projections import StatementHandler
from shared.store import Recorded
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


LANGUAGES = [
    (membership_events, membership.vocabulary),
    (transfer_events, transfer.vocabulary),
    (servicecard_events, servicecard_language.vocabulary),
    (dues_events, dues.vocabulary),
    (feedback_events, feedback_language.vocabulary),
]


@pytest.mark.parametrize(("registry", "vocabulary"), LANGUAGES, ids=[r.service for r, _ in LANGUAGES])
def test_each_service_publishes_exactly_its_published_language(registry: EventRegistry, vocabulary: Vocabulary) -> None:
    """Each of a service's published events is its published class and what it keeps to itself, nothing else; the
    events it keeps inside are in no published language."""
    assert vocabulary.source == registry.source
    published = {}
    for cls in registry.classes():
        public = published_as(cls)
        if not cls.published:
            assert public is cls, cls
            assert cls.event_name() not in vocabulary.events, cls
            continue
        assert public is vocabulary.events[cls.event_name()], cls
        assert set(cls.model_fields) - cls.private_fields == set(public.model_fields), cls
        assert cls.private_fields <= set(cls.model_fields), cls
        published[cls.event_name()] = public
    assert published == dict(vocabulary.events)


def test_a_reader_ignores_what_it_does_not_know_and_refuses_what_breaks_the_contract() -> None:
    member_id = uuid.uuid4()
    newer = {"member_id": str(member_id), "reason": "r", "added_in_a_later_release": 1}
    assert membership.decode("MemberSuspended", newer) == membership.MemberSuspended(member_id=member_id, reason="r")
    assert membership.decode("SomethingNewer", newer) is None
    with pytest.raises(ValueError, match="member_id"):
        membership.decode("MemberSuspended", {"member_id": "not a member id", "reason": "r"})


def _consumed(source: str, event: DomainEvent) -> Recorded:
    """`event` as another service consumes it: its public data, off the wire."""
    return Recorded(
        position=1,
        stream_id="inbox",
        version=1,
        event_id=uuid.uuid4(),
        name=event.event_name(),
        schema_version=event.version,
        data=event.public_data(),
        metadata={},
        recorded_at=datetime.now(UTC),
        source=source,
    )


def test_consumers_read_what_a_producer_publishes_typed_and_refuse_what_breaks_its_contract() -> None:
    """Feedback's redemptions and membership's work queue read the card service's and transfer's events through the
    published language: what the producer writes is what they read (typed), and a transfer request without its clock
    (expires_at), which the queue used to show without a deadline, now breaks the contract and is refused."""
    now = datetime.now(UTC)
    redeemed = servicecard_events.get("BenefitRedeemed")(
        redemption_id=uuid.uuid4(),
        member_id=uuid.uuid4(),
        card_no="6217000000001234",
        card_no_masked="621700*********1234",
        item_id=uuid.uuid4(),
        category="legal_aid",
        org_id=uuid.uuid4(),
        units=1,
        year=2026,
        redeemed_at=now,
    )
    redemptions = feedback_projections.redemptions
    on_redeemed = cast("StatementHandler", redemptions.lookup(servicecard_language.SOURCE, "BenefitRedeemed"))
    [(_, args)] = on_redeemed(_consumed(servicecard_language.SOURCE, redeemed))
    r = redeemed
    assert list(args) == [r.redemption_id, r.member_id, r.item_id, "legal_aid", r.org_id, now]

    requested = transfer_events.get("TransferRequested")(
        transfer_id=uuid.uuid4(),
        member_id=uuid.uuid4(),
        from_org_id=uuid.uuid4(),
        to_org_id=uuid.uuid4(),
        reason="new job",
        requested_by="member",
        requested_at=now,
        expires_at=now,
    )
    queue = work_queue.projection(request_working_days=15, application_working_days=15)
    on_requested = cast("StatementHandler", queue.lookup(transfer.SOURCE, "TransferRequested"))
    [(_, args)] = on_requested(_consumed(transfer.SOURCE, requested))
    assert args[1:7] == (requested.transfer_id, requested.from_org_id, requested.member_id, "release", now, now)
    without_clock = _consumed(transfer.SOURCE, requested)
    del without_clock.data["expires_at"]
    with pytest.raises(ValidationError, match="expires_at"):
        on_requested(without_clock)
