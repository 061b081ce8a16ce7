"""Transfer's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.transfer import access, queries
from services.transfer.domain import TransferStatus
from services.transfer.handlers import Transfers
from services.transfer.service import ServiceDep
from shared.app import request_metadata, run_command
from shared.auth import CurrentPrincipal, Target, authenticate, organization
from shared.consistency import read_after

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])

Text = Annotated[str, Field(min_length=1, max_length=500)]
Actor = Annotated[str, Field(min_length=1, max_length=200)]
MAX_BULK = 10_000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TransferIn(Body):
    member_id: UUID
    to_org_id: UUID
    reason: Text
    requested_by: Actor | None = Field(None, description="shown as the requester; default: the token's name")


class StepIn(Body):
    by: Actor | None = Field(None, description="shown as who acted; default: the token's name")
    org_id: UUID | None = Field(None, description="the organisation acting; after escalation, the common parent")


class RejectIn(StepIn):
    reason: Text


class CancelIn(Body):
    by: Actor | None = None
    reason: Text | None = None


class BulkIn(Body):
    member_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_BULK)]
    to_org_id: UUID
    reason: Text
    requested_by: Actor | None = None


async def _transfers(service: ServiceDep) -> Transfers:
    return service.transfers


TransfersDep = Annotated[Transfers, Depends(_transfers)]


@router.post("/transfers", status_code=201, tags=["transfers"])
async def request_transfer(
    body: TransferIn, request: Request, service: ServiceDep, transfers: TransfersDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Ask to move a member to another organisation: the member themselves, or their organisation's staff."""
    await access.guard.check(
        service.pool, principal, "transfer.request", await access.member(service.pool, body.member_id)
    )
    meta = request_metadata(request, principal)
    requested_by = body.requested_by or principal.display_name

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        transfer_id = await transfers.request(conn, body.member_id, body.to_org_id, body.reason, requested_by, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run, 201)


@router.post("/transfers/bulk", status_code=202, tags=["transfers"])
async def request_bulk_transfer(
    body: BulkIn, request: Request, service: ServiceDep, transfers: TransfersDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Move many members to one organisation (after a unit union is founded); progress at /transfers/bulk/{id}."""
    target = await access.members(service.pool, body.member_ids, body.to_org_id)
    await access.guard.check(service.pool, principal, "bulk.request", target)
    meta = request_metadata(request, principal)
    requested_by = body.requested_by or principal.display_name

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        batch_id = await transfers.request_bulk(conn, body.member_ids, body.to_org_id, body.reason, requested_by, meta)
        return {"batch_id": batch_id, "status": "pending"}

    response = await run_command(request, service.pool, run, 202)
    service.bulk.wake()
    return response


@router.get("/transfers/bulk/{batch_id}", tags=["transfers"])
async def get_bulk_transfer(batch_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A bulk transfer's progress: members requested, refused (with the reason) and still pending."""
    async with service.pool.acquire() as conn:
        batch = await queries.batch(conn, batch_id)
    target = Target(orgs=(batch["to_org_id"],), label=f"batch:{batch_id}")
    await access.guard.check(service.pool, principal, "bulk.read", target)
    return batch


@router.get("/transfers/{transfer_id}", tags=["transfers"])
async def get_transfer(transfer_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A transfer and its steps."""
    t = await access.transfer(service.pool, transfer_id)
    await access.guard.check(service.pool, principal, "transfer.read", t.target(*t.parties))
    async with service.pool.acquire() as conn:
        return await queries.transfer(conn, transfer_id)


def _side_step(verb: Literal["release", "accept"], summary: str) -> None:
    """Release belongs to the source side and acceptance to the target side (or to the escalation organisation)."""

    async def endpoint(
        transfer_id: UUID,
        body: StepIn,
        request: Request,
        service: ServiceDep,
        transfers: TransfersDep,
        principal: CurrentPrincipal,
    ) -> JSONResponse:
        t = await access.transfer(service.pool, transfer_id)
        side = t.from_org_id if verb == "release" else t.to_org_id
        await access.guard.check(service.pool, principal, f"transfer.{verb}", t.acting(side, body.org_id))
        meta = request_metadata(request, principal)
        by = body.by or principal.display_name
        take_step = transfers.release if verb == "release" else transfers.accept

        async def run(conn: asyncpg.Connection) -> dict[str, Any]:
            await take_step(conn, transfer_id, by, body.org_id, meta)
            return await queries.transfer(conn, transfer_id)

        return await run_command(request, service.pool, run)

    endpoint.__doc__ = summary
    router.add_api_route(
        f"/transfers/{{transfer_id}}/{verb}",
        endpoint,
        methods=["POST"],
        tags=["transfers"],
        name=f"{verb}_transfer",
        summary=summary,
    )


_side_step("release", "The source organisation lets the member go.")
_side_step("accept", "The target organisation takes the member: the transfer completes.")


@router.post("/transfers/{transfer_id}/reject", tags=["transfers"])
async def reject_transfer(
    transfer_id: UUID,
    body: RejectIn,
    request: Request,
    service: ServiceDep,
    transfers: TransfersDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Either side refuses the transfer, with the reason."""
    t = await access.transfer(service.pool, transfer_id)
    org_id = body.org_id or await access.rejecting_org(service.pool, principal, t)
    target = t.acting(t.from_org_id, org_id, t.to_org_id) if org_id else t.target(*t.parties)
    await access.guard.check(service.pool, principal, "transfer.reject", target)
    meta = request_metadata(request, principal)
    by = body.by or principal.display_name

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.reject(conn, transfer_id, by, body.reason, org_id, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.post("/transfers/{transfer_id}/cancel", tags=["transfers"])
async def cancel_transfer(
    transfer_id: UUID,
    body: CancelIn,
    request: Request,
    service: ServiceDep,
    transfers: TransfersDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """The requester withdraws the transfer before it completes: the member, or the source side."""
    t = await access.transfer(service.pool, transfer_id)
    await access.guard.check(service.pool, principal, "transfer.cancel", t.cancelling())
    meta = request_metadata(request, principal)
    by = body.by or principal.display_name

    async def run(conn: asyncpg.Connection) -> dict[str, Any]:
        await transfers.cancel(conn, transfer_id, by, body.reason, meta)
        return await queries.transfer(conn, transfer_id)

    return await run_command(request, service.pool, run)


@router.get("/members/{member_id}/transfers", tags=["transfers"])
async def get_member_transfers(member_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A member's transfers, oldest first; 404 until transfer has heard of the member."""
    await access.guard.check(service.pool, principal, "member.transfers", await access.member(service.pool, member_id))
    async with service.pool.acquire() as conn:
        return await queries.member_transfers(conn, member_id)


@router.get("/organizations/{org_id}/transfers", tags=["organizations"])
async def get_organization_transfers(
    org_id: UUID,
    service: ServiceDep,
    principal: CurrentPrincipal,
    direction: Literal["in", "out"] | None = None,
    status: TransferStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Transfers into (`in`) or out of (`out`) the organisation, newest first."""
    await access.guard.check(service.pool, principal, "organization.transfers", organization(org_id))
    async with service.pool.acquire() as conn:
        return await queries.organization_transfers(conn, org_id, direction, status, limit)


@router.get("/organizations/{org_id}/transfer-stats", tags=["organizations"])
async def get_transfer_stats(org_id: UUID, service: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Time from request to completion (count, mean, p50, p90 in seconds), in and out, and counts by status."""
    await access.guard.check(service.pool, principal, "organization.transfer_stats", organization(org_id))
    async with service.pool.acquire() as conn:
        return await queries.transfer_stats(conn, org_id)
