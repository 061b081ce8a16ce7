"""The transfer deciders: given events, when a command, then events (or the error code)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.transfer import domain
from services.transfer.domain import (
    AcceptTransfer,
    CancelTransfer,
    MemberInfo,
    OrgInfo,
    RejectTransfer,
    ReleaseTransfer,
    RequestBulkTransfer,
    RequestTransfer,
    Transfer,
    TransferStatus,
)
from services.transfer.events import (
    BulkTransferFinished,
    BulkTransferItemRefused,
    BulkTransferItemRequested,
    BulkTransferRequested,
    TransferAccepted,
    TransferCancelled,
    TransferCompleted,
    TransferEscalated,
    TransferExpired,
    TransferRejected,
    TransferReleased,
    TransferRequested,
    registry,
)
from shared import routing
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent
from shared.routing import Candidate

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
MEMBER, SOURCE, TARGET, PARENT, OTHER = (uuid4() for _ in range(5))
TRANSFER = uuid4()


def member(status: str = "active", org_id: UUID = SOURCE) -> MemberInfo:
    return MemberInfo(MEMBER, org_id, status, "310115-00000001")


def target(accepts: bool = True, dissolved: bool = False, org_id: UUID = TARGET) -> OrgInfo:
    return OrgInfo(org_id, accepts, dissolved)


def requested(requested_by: str = "staff-a") -> TransferRequested:
    return TransferRequested(
        transfer_id=TRANSFER,
        member_id=MEMBER,
        member_no="310115-00000001",
        from_org_id=SOURCE,
        to_org_id=TARGET,
        reason="moved to Pudong",
        requested_by=requested_by,
        requested_at=T0,
        expires_at=T0 + MONTH,
    )


IDS = {"transfer_id": TRANSFER, "member_id": MEMBER, "from_org_id": SOURCE, "to_org_id": TARGET}
RELEASED = TransferReleased(**IDS, by="source-staff")
ESCALATED = TransferEscalated(**IDS, escalated_to_org_id=PARENT, reason="late", expires_at=T0 + 2 * MONTH)


def given_(*events: DomainEvent) -> Transfer:
    state = domain.fold(list(events))
    assert isinstance(state, Transfer)
    return state


def refused(code: str, decide: Callable[[], Sequence[DomainEvent]]) -> None:
    with pytest.raises(DomainError) as caught:
        decide()
    assert caught.value.code == code


# --- request -------------------------------------------------------------------------------------------


def test_a_request_names_the_member_s_current_organisation_and_the_deadline() -> None:
    cmd = RequestTransfer(TRANSFER, MEMBER, TARGET, "moved to Pudong", "staff-a", T0, MONTH)
    assert domain.request_transfer(cmd, member(), target(), None) == [requested()]
    assert given_(requested()).status is TransferStatus.REQUESTED


@pytest.mark.parametrize(
    ("who", "where", "open_transfer", "code"),
    [
        (member("suspended"), target(), None, "member_not_active"),
        (member("terminated"), target(), None, "member_not_active"),
        (member(org_id=TARGET), target(), None, "same_organization"),
        (member(), target(accepts=False), None, "target_not_accepting"),
        (member(), target(dissolved=True), None, "target_not_accepting"),
        (member(), target(), uuid4(), "transfer_open"),
        (None, target(), None, "member_not_found"),
        (member(), None, None, "organization_not_found"),
    ],
)
def test_a_request_is_refused(
    who: MemberInfo | None, where: OrgInfo | None, open_transfer: UUID | None, code: str
) -> None:
    cmd = RequestTransfer(TRANSFER, MEMBER, TARGET, "r", "staff-a", T0, MONTH)
    refused(code, lambda: domain.request_transfer(cmd, who, where, open_transfer))


def test_unknown_member_or_organisation_is_a_404() -> None:
    cmd = RequestTransfer(TRANSFER, MEMBER, TARGET, "r", "staff-a", T0, MONTH)
    with pytest.raises(NotFoundError) as caught:
        domain.request_transfer(cmd, None, target(), None)
    assert caught.value.status_code == 404


# --- release, accept: the happy path -------------------------------------------------------------------


def test_the_source_releases_then_the_target_accepts_and_the_transfer_completes() -> None:
    t = given_(requested())
    assert domain.release(t, ReleaseTransfer("source-staff")) == [RELEASED]
    t = given_(requested(), RELEASED)
    assert t.status is TransferStatus.RELEASED
    later = T0 + timedelta(hours=5)
    events = domain.accept(t, AcceptTransfer("target-staff", later), member(), target())
    assert events == [
        TransferAccepted(**IDS, by="target-staff"),
        TransferCompleted(**IDS, requested_at=T0, completed_at=later, duration_seconds=5 * 3600),
    ]
    assert given_(requested(), RELEASED, *events).status is TransferStatus.COMPLETED


def test_the_completion_carries_what_membership_reads() -> None:
    completed = TransferCompleted(**IDS, requested_at=T0, completed_at=T0, duration_seconds=0)
    assert {"transfer_id", "member_id", "to_org_id"} <= completed.public_data().keys()
    assert registry.wire_type(TransferCompleted) == "union.transfer.TransferCompleted.v1"
    assert completed.partition_key() == str(MEMBER)


def test_accept_before_release_and_release_twice_are_refused() -> None:
    refused("not_released", lambda: domain.accept(given_(requested()), AcceptTransfer("t", T0), member(), target()))
    refused("already_released", lambda: domain.release(given_(requested(), RELEASED), ReleaseTransfer("s")))


def test_accept_is_refused_while_the_member_is_suspended_or_the_target_stopped_accepting() -> None:
    t = given_(requested(), RELEASED)
    refused("member_not_active", lambda: domain.accept(t, AcceptTransfer("t", T0), member("suspended"), target()))
    refused("member_not_active", lambda: domain.accept(t, AcceptTransfer("t", T0), None, target()))
    refused("target_not_accepting", lambda: domain.accept(t, AcceptTransfer("t", T0), member(), target(dissolved=True)))


def test_only_the_side_whose_step_it_is_may_act() -> None:
    refused("wrong_organization", lambda: domain.release(given_(requested()), ReleaseTransfer("x", TARGET)))
    refused(
        "wrong_organization",
        lambda: domain.accept(given_(requested(), RELEASED), AcceptTransfer("x", T0, SOURCE), member(), target()),
    )
    assert domain.release(given_(requested()), ReleaseTransfer("s", SOURCE)) == [
        RELEASED.model_copy(update={"by": "s"})
    ]


# --- reject --------------------------------------------------------------------------------------------


def test_the_source_rejects_at_release() -> None:
    [event] = domain.reject(given_(requested()), RejectTransfer("source-staff", "dues unpaid"))
    assert event == TransferRejected(**IDS, by="source-staff", side="source", org_id=SOURCE, reason="dues unpaid")
    assert given_(requested(), event).status is TransferStatus.REJECTED


def test_the_target_rejects_at_accept() -> None:
    [event] = domain.reject(given_(requested(), RELEASED), RejectTransfer("target-staff", "not our employer"))
    assert (event.side, event.org_id) == ("target", TARGET)  # type: ignore[attr-defined]


def test_the_target_may_refuse_early_but_the_source_not_after_releasing() -> None:
    [event] = domain.reject(given_(requested()), RejectTransfer("t", "no", TARGET))
    assert event.side == "target"  # type: ignore[attr-defined]
    refused("already_released", lambda: domain.reject(given_(requested(), RELEASED), RejectTransfer("s", "x", SOURCE)))
    refused("wrong_organization", lambda: domain.reject(given_(requested()), RejectTransfer("s", "x", OTHER)))


# --- cancel --------------------------------------------------------------------------------------------


def test_the_requester_cancels_before_completion() -> None:
    for history in ([requested()], [requested(), RELEASED]):
        [event] = domain.cancel(given_(*history), CancelTransfer("staff-a"))
        assert isinstance(event, TransferCancelled)
        assert given_(*history, event).status is TransferStatus.CANCELLED


def test_a_cancel_records_who_cancelled() -> None:
    [event] = domain.cancel(given_(requested()), CancelTransfer("member-7", "stayed"))
    assert (event.by, event.reason) == ("member-7", "stayed")


# --- nothing happens to a closed transfer --------------------------------------------------------------

COMPLETED = [
    requested(),
    RELEASED,
    TransferAccepted(**IDS, by="t"),
    TransferCompleted(**IDS, requested_at=T0, completed_at=T0, duration_seconds=0),
]
CLOSED = {
    "completed": COMPLETED,
    "rejected": [requested(), TransferRejected(**IDS, by="s", side="source", org_id=SOURCE, reason="x")],
    "cancelled": [requested(), TransferCancelled(**IDS, by="staff-a", reason="x")],
    "expired": [requested(), TransferExpired(**IDS, reason="late")],
}


@pytest.mark.parametrize("history", CLOSED.values(), ids=CLOSED.keys())
def test_a_closed_transfer_takes_no_more_steps(history: list[DomainEvent]) -> None:
    t = given_(*history)
    assert not t.open
    refused("transfer_closed", lambda: domain.release(t, ReleaseTransfer("s")))
    refused("transfer_closed", lambda: domain.accept(t, AcceptTransfer("t", T0), member(), target()))
    refused("transfer_closed", lambda: domain.reject(t, RejectTransfer("t", "x")))
    refused("transfer_closed", lambda: domain.cancel(t, CancelTransfer("staff-a")))
    assert domain.on_deadline(t, T0 + 10 * MONTH, PARENT, MONTH) == []
    assert domain.withdraw(t, "service:membership", "ended") == []


def test_a_terminated_membership_withdraws_the_open_transfer() -> None:
    [event] = domain.withdraw(given_(requested()), "service:/union/membership", "the membership ended")
    assert event == TransferCancelled(**IDS, by="service:/union/membership", reason="the membership ended")


# --- deadlines: escalate, then expire ------------------------------------------------------------------


def test_nothing_happens_before_the_deadline() -> None:
    assert domain.on_deadline(given_(requested()), T0 + MONTH - timedelta(seconds=1), PARENT, MONTH) == []


def test_past_the_deadline_it_escalates_to_the_common_parent_then_expires() -> None:
    now = T0 + MONTH
    [escalated] = domain.on_deadline(given_(requested()), now, PARENT, MONTH)
    assert isinstance(escalated, TransferEscalated)
    assert (escalated.escalated_to_org_id, escalated.expires_at) == (PARENT, now + MONTH)
    t = given_(requested(), escalated)
    assert (t.status, t.escalated_to, t.due_at) == (TransferStatus.REQUESTED, PARENT, now + MONTH)
    assert domain.on_deadline(t, now + timedelta(days=1), PARENT, MONTH) == []
    [expired] = domain.on_deadline(t, now + MONTH, PARENT, MONTH)
    assert isinstance(expired, TransferExpired)
    assert expired.escalated_to_org_id == PARENT
    assert given_(requested(), escalated, expired).status is TransferStatus.EXPIRED


def test_without_a_common_parent_it_expires_at_once() -> None:
    [expired] = domain.on_deadline(given_(requested(), RELEASED), T0 + MONTH, None, MONTH)
    assert isinstance(expired, TransferExpired)
    assert "no parent" in expired.reason


def test_after_escalation_the_common_parent_acts_for_either_side() -> None:
    t = given_(requested(), ESCALATED)
    assert domain.release(t, ReleaseTransfer("parent-staff", PARENT)) == [
        TransferReleased(**IDS, by="parent-staff", on_behalf_of=PARENT)
    ]
    t = given_(requested(), ESCALATED, RELEASED)
    accepted, completed = domain.accept(t, AcceptTransfer("parent-staff", T0 + MONTH, PARENT), member(), target())
    assert accepted == TransferAccepted(**IDS, by="parent-staff", on_behalf_of=PARENT)
    assert isinstance(completed, TransferCompleted)
    [rejected] = domain.reject(t, RejectTransfer("parent-staff", "no", PARENT))
    assert rejected.side == "escalation"  # type: ignore[attr-defined]


def test_before_escalation_the_parent_may_not_act() -> None:
    refused("wrong_organization", lambda: domain.release(given_(requested()), ReleaseTransfer("p", PARENT)))


# --- bulk batches --------------------------------------------------------------------------------------

BATCH = uuid4()


def test_a_bulk_request_lists_each_member_once() -> None:
    a, b = uuid4(), uuid4()
    [event] = domain.request_bulk(
        RequestBulkTransfer(BATCH, [a, b, a], TARGET, "unit union founded", "staff"), target()
    )
    assert event == BulkTransferRequested(
        batch_id=BATCH, to_org_id=TARGET, reason="unit union founded", requested_by="staff", member_ids=[a, b]
    )
    assert event.published is False


def test_a_bulk_request_is_refused_up_front() -> None:
    cmd = RequestBulkTransfer(BATCH, [uuid4()], TARGET, "r", "staff")
    with pytest.raises(InvalidInputError):
        domain.request_bulk(RequestBulkTransfer(BATCH, [], TARGET, "r", "staff"), target())
    refused("organization_not_found", lambda: domain.request_bulk(cmd, None))
    refused("target_not_accepting", lambda: domain.request_bulk(cmd, target(accepts=False)))


def test_a_batch_records_each_outcome_and_finishes_with_the_last() -> None:
    a, b = uuid4(), uuid4()
    start = BulkTransferRequested(batch_id=BATCH, to_org_id=TARGET, reason="r", requested_by="s", member_ids=[a, b])
    batch = domain.fold([start])
    assert isinstance(batch, domain.Batch)
    assert batch.pending == [a, b]
    first = domain.record_requested(batch, a, TRANSFER)
    assert first == [BulkTransferItemRequested(batch_id=BATCH, member_id=a, transfer_id=TRANSFER)]
    batch = domain.fold([start, *first])
    assert isinstance(batch, domain.Batch)
    refused("item_not_pending", lambda: domain.record_requested(batch, a, TRANSFER))
    last = domain.record_refused(batch, b, "transfer_open", "already moving")
    assert last == [
        BulkTransferItemRefused(batch_id=BATCH, member_id=b, code="transfer_open", reason="already moving"),
        BulkTransferFinished(batch_id=BATCH, requested=1, refused=1),
    ]
    done = domain.fold([start, *first, *last])
    assert isinstance(done, domain.Batch)
    assert done.finished
    assert done.pending == []


# --- the target of an automatic transfer ---------------------------------------------------------------

CODE = "91310115MA1K4ABC3X"


def org(type_: str, region: str = "310115", **extra: object) -> Candidate:
    return Candidate(uuid4(), type_, region, **extra)  # type: ignore[arg-type]


def test_the_employer_s_own_union_comes_first() -> None:
    own = org("enterprise", "440300", credit_code=CODE)
    assert routing.choose_target(CODE, "310115", None, [org("federation", subtype="regional"), own]) == own.org_id


def test_without_one_the_nearest_federation_or_joint_union_of_the_place() -> None:
    regional = org("federation", subtype="regional")
    joint = org("joint", subtype="building")
    industry = org("federation", subtype="industry", industry="物流")
    city = org("federation", "310100", subtype="regional")
    everyone = [joint, regional, industry, city, org("township"), org("federation", "320115", subtype="regional")]
    assert routing.choose_target(CODE, "310115", "物流", everyone) == industry.org_id
    assert routing.choose_target(CODE, "310115", "餐饮", everyone) == regional.org_id
    assert routing.choose_target(CODE, "310115", None, [joint, city]) == joint.org_id
    assert routing.choose_target(CODE, "310115", None, [city]) == city.org_id  # the prefecture covers the county
    assert routing.choose_target(CODE, "310115", None, [org("township"), industry]) is None


def test_dissolved_or_non_accepting_organisations_are_never_chosen() -> None:
    gone = org("enterprise", credit_code=CODE, active=False)
    regional = org("federation", subtype="regional")
    assert routing.choose_target(CODE, "310115", None, [gone, regional]) == regional.org_id
    assert routing.choose_target(CODE, "310115", None, [gone]) is None


def test_division_levels() -> None:
    assert routing.region_levels("310115") == ["310115", "310100", "310000"]
    assert routing.region_levels("310000") == ["310000"]


# --- an invariant: whatever the commands, a transfer closes at most once and never reopens ---------------

STEPS = st.lists(
    st.sampled_from(
        ["release", "accept", "reject", "cancel", "deadline", "parent_release", "parent_accept", "withdraw"]
    ),
    max_size=12,
)


def decide(step: str, t: Transfer, now: datetime) -> Sequence[DomainEvent]:  # noqa: PLR0911 - one arm a step
    match step:
        case "release":
            return domain.release(t, ReleaseTransfer("s"))
        case "accept":
            return domain.accept(t, AcceptTransfer("t", now), member(), target())
        case "reject":
            return domain.reject(t, RejectTransfer("x", "no"))
        case "cancel":
            return domain.cancel(t, CancelTransfer("staff-a"))
        case "deadline":
            return domain.on_deadline(t, now, PARENT, MONTH)
        case "parent_release":
            return domain.release(t, ReleaseTransfer("p", PARENT))
        case "parent_accept":
            return domain.accept(t, AcceptTransfer("p", now, PARENT), member(), target())
    return domain.withdraw(t, "svc", "ended")


@given(STEPS)
@settings(max_examples=300, deadline=None)
def test_a_transfer_closes_at_most_once(steps: list[str]) -> None:
    history: list[DomainEvent] = [requested()]
    now = T0
    for step in steps:
        now += timedelta(days=20)
        try:
            history.extend(decide(step, given_(*history), now))
        except DomainError:
            continue
    closing = [
        e for e in history if isinstance(e, (TransferCompleted, TransferRejected, TransferCancelled, TransferExpired))
    ]
    assert len(closing) <= 1
    if closing:
        assert history[-1] is closing[0]
    assert sum(isinstance(e, TransferEscalated) for e in history) <= 1
    completed = [e for e in history if isinstance(e, TransferCompleted)]
    accepted = [e for e in history if isinstance(e, TransferAccepted)]
    assert len(completed) == len(accepted)
    if completed:
        assert any(isinstance(e, TransferReleased) for e in history)
