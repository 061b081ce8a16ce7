"""Transfer's events: facts in the past tense, keyed by the member they move (bulk batches stay inside). Their
published shape is transfer's published language (published/transfer.py); each class here adds what the service keeps
to itself."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from published import transfer as public
from shared.events import DomainEvent, EventRegistry

registry = EventRegistry("transfer")


@registry.register
class TransferRequested(public.TransferRequested, DomainEvent):
    pass


@registry.register
class TransferReleased(public.TransferReleased, DomainEvent):
    pass


@registry.register
class TransferAccepted(public.TransferAccepted, DomainEvent):
    pass


@registry.register
class TransferCompleted(public.TransferCompleted, DomainEvent):
    pass


@registry.register
class TransferRejected(public.TransferRejected, DomainEvent):
    pass


@registry.register
class TransferCancelled(public.TransferCancelled, DomainEvent):
    pass


@registry.register
class TransferEscalated(public.TransferEscalated, DomainEvent):
    pass


@registry.register
class TransferExpired(public.TransferExpired, DomainEvent):
    pass


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
