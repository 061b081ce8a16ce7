"""Transfer's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.transfer import queries
from services.transfer.domain import TransferStatus
from services.transfer.handlers import Transfers
from services.transfer.service import ServiceDep
from shared.app import request_metadata, run_command

router = APIRouter()

Text = Annotated[str, Field(min_length=1, max_length=500)]
Actor = Annotated[str, Field(min_length=1, max_length=200)]
MAX_BULK = 10_000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TransferIn(Body):
    member_id: UUID
    to_org_id: UUID
    reason: Text
    requested_by: Actor


class StepIn(Body):
    by: Actor
    org_id: UUID | None = Field(None, description="the organisation acting; after escalation, the common parent")


class RejectIn(StepIn):
    reason: Text


class CancelIn(Body):
    by: Actor
    reason: Text | None = None


class BulkIn(Body):
    member_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_BULK)]
    to_org_id: UUID
    reason: Text
    requested_by: Actor = "bulk"


def _transfers(service: ServiceDep) -> Transfers:
    return service.transfers


TransfersDep = Annotated[Transfers, Depends(_transfers)]


@router.post("/transfers", status_code=201, tags=["transfers"])
async def request_transfer(
    body: TransferIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """Ask to move a member to another organisation."""
    meta = request_metadata(request, actor=body.requested_by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        transfer_id = await transfers.request(
            conn, body.member_id, body.to_org_id, body.reason, body.requested_by, meta
        )
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run, 201)


@router.post("/transfers/bulk", status_code=202, tags=["transfers"])
async def request_bulk_transfer(
    body: BulkIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """Move many members to one organisation (after a unit union is founded); progress at /transfers/bulk/{id}."""
    meta = request_metadata(request, actor=body.requested_by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        batch_id = await transfers.request_bulk(
            conn, body.member_ids, body.to_org_id, body.reason, body.requested_by, meta
        )
        return {"batch_id": batch_id, "status": "pending"}

    response = await run_command(request, service.pool, run, 202)
    service.bulk.wake()
    return response


@router.get("/transfers/bulk/{batch_id}", tags=["transfers"])
async def get_bulk_transfer(batch_id: UUID, service: ServiceDep) -> dict[str, Any]:
    """A bulk transfer's progress: members requested, refused (with the reason) and still pending."""
    async with service.pool.acquire() as conn:
        return await queries.batch(conn, batch_id)


@router.get("/transfers/{transfer_id}", tags=["transfers"])
async def get_transfer(transfer_id: UUID, service: ServiceDep) -> dict[str, Any]:
    """A transfer and its steps."""
    async with service.pool.acquire() as conn:
        return await queries.transfer(conn, transfer_id)


@router.post("/transfers/{transfer_id}/release", tags=["transfers"])
async def release_transfer(
    transfer_id: UUID, body: StepIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """The source organisation lets the member go."""
    meta = request_metadata(request, actor=body.by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.release(conn, transfer_id, body.by, body.org_id, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.post("/transfers/{transfer_id}/accept", tags=["transfers"])
async def accept_transfer(
    transfer_id: UUID, body: StepIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """The target organisation takes the member: the transfer completes."""
    meta = request_metadata(request, actor=body.by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.accept(conn, transfer_id, body.by, body.org_id, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.post("/transfers/{transfer_id}/reject", tags=["transfers"])
async def reject_transfer(
    transfer_id: UUID, body: RejectIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """Either side refuses the transfer, with the reason."""
    meta = request_metadata(request, actor=body.by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.reject(conn, transfer_id, body.by, body.reason, body.org_id, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.post("/transfers/{transfer_id}/cancel", tags=["transfers"])
async def cancel_transfer(
    transfer_id: UUID, body: CancelIn, request: Request, service: ServiceDep, transfers: TransfersDep
) -> JSONResponse:
    """The requester withdraws the transfer before it completes."""
    meta = request_metadata(request, actor=body.by)

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.cancel(conn, transfer_id, body.by, body.reason, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.get("/members/{member_id}/transfers", tags=["transfers"])
async def get_member_transfers(member_id: UUID, service: ServiceDep) -> dict[str, Any]:
    """A member's transfers, oldest first; 404 until transfer has heard of the member."""
    async with service.pool.acquire() as conn:
        return await queries.member_transfers(conn, member_id)


@router.get("/organizations/{org_id}/transfers", tags=["organizations"])
async def get_organization_transfers(
    org_id: UUID,
    service: ServiceDep,
    direction: Literal["in", "out"] | None = None,
    status: TransferStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Transfers into (`in`) or out of (`out`) the organisation, newest first."""
    async with service.pool.acquire() as conn:
        return await queries.organization_transfers(conn, org_id, direction, status, limit)


@router.get("/organizations/{org_id}/transfer-stats", tags=["organizations"])
async def get_transfer_stats(org_id: UUID, service: ServiceDep) -> dict[str, Any]:
    """Time from request to completion (count, mean, p50, p90 in seconds), in and out, and counts by status."""
    async with service.pool.acquire() as conn:
        return await queries.transfer_stats(conn, org_id)
