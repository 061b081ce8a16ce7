"""Transfer's published language: its events as its consumers read them (membership moves the member on a completed
transfer and shows the open ones in its work queue). Every event is about one member's transfer, keyed by the member;
bulk batches stay inside the service."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from published.base import PublishedEvent, Vocabulary

SOURCE = "/union/transfer"
TOPIC = "union.transfer.v1"


class TransferEvent(PublishedEvent):
    """Every transfer event names the transfer, the member and both organisations."""

    transfer_id: UUID
    member_id: UUID
    from_org_id: UUID
    to_org_id: UUID


class TransferRequested(TransferEvent):
    member_no: str | None = None
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime  # the deadline the scheduler keeps: escalation, or expiry without a common parent
    batch_id: UUID | None = None
    requester: str | None = None  # the actor who asked, from their token (`requested_by` is a label): who may cancel


class TransferReleased(TransferEvent):
    by: str
    on_behalf_of: UUID | None = None  # the escalation organisation, when it released for the source


class TransferAccepted(TransferEvent):
    by: str
    on_behalf_of: UUID | None = None  # the escalation organisation, when it accepted for the target


class TransferCompleted(TransferEvent):
    """Membership moves the member on this one: keep `transfer_id`, `member_id` and `to_org_id`."""

    requested_at: datetime
    completed_at: datetime
    duration_seconds: float


class TransferRejected(TransferEvent):
    by: str
    side: str  # "source" (refused to release), "target" (refused to accept) or "escalation"
    org_id: UUID
    reason: str


class TransferCancelled(TransferEvent):
    by: str
    reason: str


class TransferEscalated(TransferEvent):
    escalated_to_org_id: UUID  # the nearest common parent of both organisations
    reason: str
    expires_at: datetime  # the common parent's own deadline; after it the transfer expires


class TransferExpired(TransferEvent):
    reason: str
    escalated_to_org_id: UUID | None = None


vocabulary = Vocabulary(
    SOURCE,
    [
        TransferRequested,
        TransferReleased,
        TransferAccepted,
        TransferCompleted,
        TransferRejected,
        TransferCancelled,
        TransferEscalated,
        TransferExpired,
    ],
)
decode = vocabulary.decode
