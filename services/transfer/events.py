"""Transfer's events: facts in the past tense, keyed by the member they move (bulk batches stay inside)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("transfer")


class TransferEvent(DomainEvent):
    """Every transfer event names the transfer, the member and both organisations."""

    transfer_id: UUID
    member_id: UUID
    from_org_id: UUID
    to_org_id: UUID


@registry.register
class TransferRequested(TransferEvent):
    member_no: str | None = None
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime  # the deadline the scheduler keeps: escalation, or expiry without a common parent
    batch_id: UUID | None = None
    requester: str | None = None  # the actor who asked, from their token (`requested_by` is a label): who may cancel


@registry.register
class TransferReleased(TransferEvent):
    by: str
    on_behalf_of: UUID | None = None  # the escalation organisation, when it released for the source


@registry.register
class TransferAccepted(TransferEvent):
    by: str
    on_behalf_of: UUID | None = None  # the escalation organisation, when it accepted for the target


@registry.register
class TransferCompleted(TransferEvent):
    """Membership moves the member on this one: keep `transfer_id`, `member_id` and `to_org_id`."""

    requested_at: datetime
    completed_at: datetime
    duration_seconds: float


@registry.register
class TransferRejected(TransferEvent):
    by: str
    side: str  # "source" (refused to release), "target" (refused to accept) or "escalation"
    org_id: UUID
    reason: str


@registry.register
class TransferCancelled(TransferEvent):
    by: str
    reason: str


@registry.register
class TransferEscalated(TransferEvent):
    escalated_to_org_id: UUID  # the nearest common parent of both organisations
    reason: str
    expires_at: datetime  # the common parent's own deadline; after it the transfer expires


@registry.register
class TransferExpired(TransferEvent):
    reason: str
    escalated_to_org_id: UUID | None = None


# --- bulk batches: the process's own bookkeeping, never published -------------------------------------


class BatchEvent(DomainEvent):
    published: ClassVar[bool] = False

    batch_id: UUID

    def partition_key(self) -> str:
        return str(self.batch_id)


@registry.register
class BulkTransferRequested(BatchEvent):
    to_org_id: UUID
    reason: str
    requested_by: str
    member_ids: list[UUID]
    requester: str | None = None  # the actor who asked, from their token: the actor of every transfer it requests


@registry.register
class BulkTransferItemRequested(BatchEvent):
    member_id: UUID
    transfer_id: UUID


@registry.register
class BulkTransferItemRefused(BatchEvent):
    member_id: UUID
    code: str
    reason: str


@registry.register
class BulkTransferFinished(BatchEvent):
    requested: int
    refused: int
