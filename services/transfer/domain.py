"""Transfer's rules as deciders: decide(command, state) -> events; evolve(state, event) -> state.

A transfer is requested, released by the source organisation, then accepted by the target, which
completes it. Either side may reject it with a reason; the requester may cancel it while it is open.
A transfer left open past its deadline escalates to the nearest common parent of both organisations,
which may then release and accept on behalf of either side until its own deadline; after that (or at
the first deadline, when the organisations share no parent) the transfer expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from uuid import UUID

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
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent


class TransferStatus(StrEnum):
    REQUESTED = "requested"
    RELEASED = "released"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


OPEN = frozenset({TransferStatus.REQUESTED, TransferStatus.RELEASED})
ACTIVE = "active"
# a retained member (保留会籍) who finds work moves to the new unit's union by transfer, which restores the membership
TRANSFERABLE = frozenset({ACTIVE, "retained"})


# --- what transfer knows of members and organisations (from membership's topic) ------------------------


@dataclass(frozen=True)
class MemberInfo:
    member_id: UUID
    org_id: UUID
    status: str
    member_no: str | None = None


@dataclass(frozen=True)
class OrgInfo:
    org_id: UUID
    accepts_members: bool
    dissolved: bool = False


# --- the transfer --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    transfer_id: UUID
    member_id: UUID
    from_org_id: UUID
    to_org_id: UUID
    reason: str
    requested_by: str
    requested_at: datetime
    due_at: datetime
    status: TransferStatus = TransferStatus.REQUESTED
    escalated_to: UUID | None = None
    batch_id: UUID | None = None

    @property
    def open(self) -> bool:
        return self.status in OPEN

    def ids(self) -> dict[str, UUID]:
        return {
            "transfer_id": self.transfer_id,
            "member_id": self.member_id,
            "from_org_id": self.from_org_id,
            "to_org_id": self.to_org_id,
        }


@dataclass(frozen=True)
class RequestTransfer:
    transfer_id: UUID
    member_id: UUID
    to_org_id: UUID
    reason: str
    requested_by: str
    now: datetime
    expires_in: timedelta
    batch_id: UUID | None = None
    requester: str | None = None


@dataclass(frozen=True)
class ReleaseTransfer:
    by: str
    org_id: UUID | None = None  # the organisation acting; None: the source itself


@dataclass(frozen=True)
class AcceptTransfer:
    by: str
    now: datetime
    org_id: UUID | None = None  # the organisation acting; None: the target itself


@dataclass(frozen=True)
class RejectTransfer:
    by: str
    reason: str
    org_id: UUID | None = None  # None: the side whose step is due (source before release, target after)


@dataclass(frozen=True)
class CancelTransfer:
    by: str
    reason: str = "cancelled by the requester"


def ensure_can_transfer(member: MemberInfo, target: OrgInfo, open_transfer: UUID | None) -> None:
    if member.status not in TRANSFERABLE:
        raise DomainError("member_not_active", f"only an active member transfers; this one is {member.status}")
    if member.org_id == target.org_id:
        raise DomainError("same_organization", "the member already belongs to the target organisation")
    if target.dissolved:
        raise DomainError("target_not_accepting", "the target organisation is dissolved")
    if not target.accepts_members:
        raise DomainError("target_not_accepting", "the target organisation leads unions and holds no members itself")
    if open_transfer is not None:
        raise DomainError("transfer_open", f"the member already has an open transfer ({open_transfer})")


def request_transfer(
    cmd: RequestTransfer, member: MemberInfo | None, target: OrgInfo | None, open_transfer: UUID | None
) -> list[DomainEvent]:
    if member is None:
        raise NotFoundError("member", cmd.member_id)
    if target is None:
        raise NotFoundError("organization", cmd.to_org_id)
    ensure_can_transfer(member, target, open_transfer)
    return [
        TransferRequested(
            transfer_id=cmd.transfer_id,
            member_id=member.member_id,
            member_no=member.member_no,
            from_org_id=member.org_id,
            to_org_id=target.org_id,
            reason=cmd.reason,
            requested_by=cmd.requested_by,
            requested_at=cmd.now,
            expires_at=cmd.now + cmd.expires_in,
            batch_id=cmd.batch_id,
            requester=cmd.requester,
        )
    ]


def _ensure_open(t: Transfer) -> None:
    if not t.open:
        raise DomainError("transfer_closed", f"the transfer is already {t.status}")


def _on_behalf(t: Transfer, acting: UUID | None, own: UUID, step: str) -> UUID | None:
    """None when the organisation whose step it is acts; the escalation organisation acting for it otherwise."""
    if acting is None or acting == own:
        return None
    if t.escalated_to is not None and acting == t.escalated_to:
        return acting
    raise DomainError("wrong_organization", f"organisation {acting} may not {step} this transfer")


def release(t: Transfer, cmd: ReleaseTransfer) -> list[DomainEvent]:
    _ensure_open(t)
    if t.status is TransferStatus.RELEASED:
        raise DomainError("already_released", "the source organisation already released the member")
    on_behalf = _on_behalf(t, cmd.org_id, t.from_org_id, "release")
    return [TransferReleased(**t.ids(), by=cmd.by, on_behalf_of=on_behalf)]


def accept(t: Transfer, cmd: AcceptTransfer, member: MemberInfo | None, target: OrgInfo | None) -> list[DomainEvent]:
    """Acceptance completes the transfer: membership moves the member when it reads TransferCompleted."""
    _ensure_open(t)
    if t.status is TransferStatus.REQUESTED:
        raise DomainError("not_released", "the source organisation has not released the member yet")
    on_behalf = _on_behalf(t, cmd.org_id, t.to_org_id, "accept")
    if member is None or member.status not in TRANSFERABLE:
        raise DomainError("member_not_active", "only an active member transfers")
    if target is None or target.dissolved or not target.accepts_members:
        raise DomainError("target_not_accepting", "the target organisation no longer accepts members")
    duration = max((cmd.now - t.requested_at).total_seconds(), 0.0)
    return [
        TransferAccepted(**t.ids(), by=cmd.by, on_behalf_of=on_behalf),
        TransferCompleted(**t.ids(), requested_at=t.requested_at, completed_at=cmd.now, duration_seconds=duration),
    ]


def reject(t: Transfer, cmd: RejectTransfer) -> list[DomainEvent]:
    _ensure_open(t)
    if cmd.org_id is None:
        side, org = ("source", t.from_org_id) if t.status is TransferStatus.REQUESTED else ("target", t.to_org_id)
    elif cmd.org_id == t.from_org_id:
        side, org = "source", t.from_org_id
    elif cmd.org_id == t.to_org_id:
        side, org = "target", t.to_org_id
    elif t.escalated_to is not None and cmd.org_id == t.escalated_to:
        side, org = "escalation", t.escalated_to
    else:
        raise DomainError("wrong_organization", f"organisation {cmd.org_id} is not a party to this transfer")
    if side == "source" and t.status is TransferStatus.RELEASED:
        raise DomainError("already_released", "the source organisation released the member; the target decides now")
    return [TransferRejected(**t.ids(), by=cmd.by, side=side, org_id=org, reason=cmd.reason)]


def cancel(t: Transfer, cmd: CancelTransfer) -> list[DomainEvent]:
    """Who may cancel (the member, or the source side) is the access rules' decision: services/transfer/access.py."""
    _ensure_open(t)
    return [TransferCancelled(**t.ids(), by=cmd.by, reason=cmd.reason)]


def withdraw(t: Transfer, by: str, reason: str) -> list[DomainEvent]:
    """The membership ended: an open transfer has nothing left to move."""
    if not t.open:
        return []
    return [TransferCancelled(**t.ids(), by=by, reason=reason)]


def on_deadline(
    t: Transfer, now: datetime, common_parent: UUID | None, escalation_window: timedelta
) -> list[DomainEvent]:
    """Past its deadline an open transfer escalates once to the nearest common parent, then expires."""
    if not t.open or now < t.due_at:
        return []
    if t.escalated_to is None and common_parent is not None:
        return [
            TransferEscalated(
                **t.ids(),
                escalated_to_org_id=common_parent,
                expires_at=now + escalation_window,
                reason=f"no decision since {t.requested_at.isoformat()}: the common parent organisation may decide",
            )
        ]
    reason = (
        "the common parent organisation did not decide in time"
        if t.escalated_to is not None
        else "no decision in time, and the organisations share no parent to escalate to"
    )
    return [TransferExpired(**t.ids(), reason=reason, escalated_to_org_id=t.escalated_to)]


# --- bulk transfer batches -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    batch_id: UUID
    to_org_id: UUID
    reason: str
    requested_by: str
    member_ids: tuple[UUID, ...]
    outcomes: Mapping[UUID, str] = field(default_factory=lambda: MappingProxyType({}))
    finished: bool = False
    requester: str | None = None

    @property
    def pending(self) -> list[UUID]:
        return [m for m in self.member_ids if m not in self.outcomes]


@dataclass(frozen=True)
class RequestBulkTransfer:
    batch_id: UUID
    member_ids: Sequence[UUID]
    to_org_id: UUID
    reason: str
    requested_by: str
    requester: str | None = None


def request_bulk(cmd: RequestBulkTransfer, target: OrgInfo | None) -> list[DomainEvent]:
    members = list(dict.fromkeys(cmd.member_ids))  # a member named twice is moved once
    if not members:
        raise InvalidInputError("member_ids", "name at least one member")
    if target is None:
        raise NotFoundError("organization", cmd.to_org_id)
    if target.dissolved or not target.accepts_members:
        raise DomainError("target_not_accepting", "the target organisation does not accept members")
    return [
        BulkTransferRequested(
            batch_id=cmd.batch_id,
            to_org_id=cmd.to_org_id,
            reason=cmd.reason,
            requested_by=cmd.requested_by,
            member_ids=members,
            requester=cmd.requester,
        )
    ]


def _record(batch: Batch, member_id: UUID, event: DomainEvent, requested: bool) -> list[DomainEvent]:
    if member_id not in batch.member_ids or member_id in batch.outcomes:
        raise DomainError("item_not_pending", f"member {member_id} is not pending in batch {batch.batch_id}")
    events = [event]
    if len(batch.pending) == 1:
        outcomes = [*batch.outcomes.values(), "requested" if requested else "refused"]
        events.append(
            BulkTransferFinished(
                batch_id=batch.batch_id, requested=outcomes.count("requested"), refused=outcomes.count("refused")
            )
        )
    return events


def record_requested(batch: Batch, member_id: UUID, transfer_id: UUID) -> list[DomainEvent]:
    item = BulkTransferItemRequested(batch_id=batch.batch_id, member_id=member_id, transfer_id=transfer_id)
    return _record(batch, member_id, item, requested=True)


def record_refused(batch: Batch, member_id: UUID, code: str, reason: str) -> list[DomainEvent]:
    item = BulkTransferItemRefused(batch_id=batch.batch_id, member_id=member_id, code=code, reason=reason)
    return _record(batch, member_id, item, requested=False)


# --- evolve --------------------------------------------------------------------------------------------

State = Transfer | Batch | None


def fold(events: Sequence[DomainEvent]) -> State:
    state: State = None
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: State, event: DomainEvent) -> State:
    if isinstance(
        event, (BulkTransferRequested, BulkTransferItemRequested, BulkTransferItemRefused, BulkTransferFinished)
    ):
        return _evolve_batch(state, event)
    return _evolve_transfer(state, event)


def _evolve_transfer(state: State, event: DomainEvent) -> State:  # noqa: PLR0911 - one arm per event type
    match event:
        case TransferRequested():
            return Transfer(
                event.transfer_id,
                event.member_id,
                event.from_org_id,
                event.to_org_id,
                event.reason,
                event.requested_by,
                event.requested_at,
                event.expires_at,
                batch_id=event.batch_id,
            )
        case TransferReleased() if isinstance(state, Transfer):
            return replace(state, status=TransferStatus.RELEASED)
        case TransferCompleted() if isinstance(state, Transfer):
            return replace(state, status=TransferStatus.COMPLETED)
        case TransferRejected() if isinstance(state, Transfer):
            return replace(state, status=TransferStatus.REJECTED)
        case TransferCancelled() if isinstance(state, Transfer):
            return replace(state, status=TransferStatus.CANCELLED)
        case TransferEscalated() if isinstance(state, Transfer):
            return replace(state, escalated_to=event.escalated_to_org_id, due_at=event.expires_at)
        case TransferExpired() if isinstance(state, Transfer):
            return replace(state, status=TransferStatus.EXPIRED)
    return state


def _evolve_batch(state: State, event: DomainEvent) -> State:
    match event:
        case BulkTransferRequested():
            return Batch(
                event.batch_id,
                event.to_org_id,
                event.reason,
                event.requested_by,
                tuple(event.member_ids),
                requester=event.requester,
            )
        case BulkTransferItemRequested() | BulkTransferItemRefused() if isinstance(state, Batch):
            outcome = "requested" if isinstance(event, BulkTransferItemRequested) else "refused"
            return replace(state, outcomes=MappingProxyType({**state.outcomes, event.member_id: outcome}))
        case BulkTransferFinished() if isinstance(state, Batch):
            return replace(state, finished=True)
    return state
