"""Handlers (load, decide, append) against the in-memory event store: what a command leaves in the streams,
without a database. The store passes the same contract tests as the PostgreSQL one (test_store_contract.py)."""

from __future__ import annotations

import os
import uuid

import pytest

from services.feedback import domain as feedback_domain
from services.feedback.events import RequestRaised
from services.feedback.events import registry as feedback_events
from services.feedback.handlers import Feedback, request_stream
from services.membership import domain as membership_domain
from services.membership.events import (
    ApplicationRejected,
    MemberReinstated,
    MemberSuspended,
    MemberTerminated,
    OrganizationRegistered,
)
from services.membership.events import registry as membership_events
from services.membership.handlers import Membership, application_stream, member_stream, org_stream
from services.transfer import domain as transfer_domain
from services.transfer.events import TransferCancelled, TransferRejected, TransferReleased
from services.transfer.events import registry as transfer_events
from services.transfer.handlers import Transfers, transfer_stream
from shared.errors import DomainError, NotFoundError
from shared.memstore import InMemoryEventStore
from shared.pii import PersonalDataVault
from shared.store import Metadata, Stream
from tests.unit.test_membership_domain import joined_event, submitted
from tests.unit.test_transfer_domain import MONTH, TRANSFER, requested

META = Metadata(actor="staff:test")


def names(store: InMemoryEventStore, stream_id: str) -> list[str]:
    return [e.name for e in store.log if e.stream_id == stream_id]


# --- membership ---


@pytest.fixture
def membership() -> Membership:
    vault = PersonalDataVault(os.urandom(32), os.urandom(32))
    return Membership(InMemoryEventStore(membership_events), vault, founding_threshold=3)


async def test_a_member_is_suspended_reinstated_and_terminated_and_no_further(membership: Membership) -> None:
    joined = joined_event()
    await membership.store.append(None, Stream(member_stream(joined.member_id)), [joined], META)
    await membership.suspend(None, joined.member_id, "unpaid dues", META)
    await membership.reinstate(None, joined.member_id, "paid", META)
    await membership.terminate(None, joined.member_id, "withdrew", META)
    with pytest.raises(DomainError):
        await membership.suspend(None, joined.member_id, "again", META)
    store = membership.store
    assert isinstance(store, InMemoryEventStore)
    assert names(store, member_stream(joined.member_id)) == [
        "MemberJoined",
        MemberSuspended.event_name(),
        MemberReinstated.event_name(),
        MemberTerminated.event_name(),
    ]
    assert {e.metadata["actor"] for e in store.log} == {"staff:test"}


async def test_a_child_registers_under_its_parent_and_an_application_is_rejected_once(membership: Membership) -> None:
    county = membership_domain.RegisterOrganization(
        org_id=uuid.uuid4(), name="县总工会", type=membership_domain.OrgType.COUNTY, region_code="310115"
    )
    await membership.register_organization(None, county, META)
    township = membership_domain.RegisterOrganization(
        org_id=uuid.uuid4(),
        name="镇总工会",
        type=membership_domain.OrgType.TOWNSHIP,
        region_code="310115",
        parent_id=county.org_id,
    )
    await membership.register_organization(None, township, META)
    stream, _ = await membership.organization(None, township.org_id)
    assert [e.data["parent_id"] for e in stream.events] == [str(county.org_id)]
    application = submitted(township.org_id)
    await membership.store.append(None, Stream(application_stream(application.application_id)), [application], META)
    await membership.reject_application(None, application.application_id, "reviewer", "incomplete", META)
    with pytest.raises(DomainError) as again:
        await membership.reject_application(None, application.application_id, "reviewer", "again", META)
    assert again.value.code == "application_not_pending"
    stream, _ = await membership.application(None, application.application_id)
    assert [e.name for e in stream.events] == ["ApplicationSubmitted", ApplicationRejected.event_name()]
    with pytest.raises(NotFoundError):
        await membership.organization(None, uuid.uuid4())
    assert [e.name for e in (await membership.store.load(None, org_stream(county.org_id))).events] == [
        OrganizationRegistered.event_name()
    ]


# --- transfer ---


@pytest.fixture
def transfers() -> Transfers:
    return Transfers(InMemoryEventStore(transfer_events), expires_in=MONTH, escalation_window=MONTH)


async def test_a_transfer_is_released_then_rejected_and_a_cancel_comes_too_late(transfers: Transfers) -> None:
    await transfers.store.append(None, Stream(transfer_stream(TRANSFER)), [requested()], META)
    await transfers.release(None, TRANSFER, "source-staff", None, META)
    await transfers.reject(None, TRANSFER, "target-staff", "no place", None, META)
    with pytest.raises(DomainError):
        await transfers.cancel(None, TRANSFER, "staff-a", None, META)
    stream, state = await transfers.transfer(None, TRANSFER)
    assert [e.name for e in stream.events] == [
        "TransferRequested",
        TransferReleased.event_name(),
        TransferRejected.event_name(),
    ]
    assert state.status is transfer_domain.TransferStatus.REJECTED
    assert TransferCancelled.event_name() not in [e.name for e in stream.events]


# --- feedback ---


async def test_a_request_is_answered_once() -> None:
    feedback = Feedback(InMemoryEventStore(feedback_events), lambda: requested().requested_at, lambda _: None)  # type: ignore[arg-type,return-value]
    raised = RequestRaised(
        request_id=uuid.uuid4(), member_id=uuid.uuid4(), org_id=uuid.uuid4(), category="wages", text="unpaid"
    )
    await feedback.store.append(None, Stream(request_stream(raised.request_id)), [raised], META)
    await feedback.answer_request(None, raised.request_id, "staff", "we called the employer", META)
    with pytest.raises(DomainError):
        await feedback.answer_request(None, raised.request_id, "staff", "twice", META)
    with pytest.raises(NotFoundError):
        await feedback.answer_request(None, uuid.uuid4(), "staff", "nobody asked", META)
    stream = await feedback.store.load(None, request_stream(raised.request_id))
    state = feedback_domain.fold(stream.domain_events())
    assert isinstance(state, feedback_domain.Request)
    assert state.answered
