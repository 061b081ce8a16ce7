"""Transfer's HTTP routes: request body -> command -> handler; query -> view. No rules here."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.transfer import access, queries
from services.transfer.domain import TransferStatus
from services.transfer.service import TransferService
from shared.auth import Target, organization
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after
from shared.web.links import Link, declare

# every route needs a valid token unless it is on `public` (default deny); what it may do: access.py
# position tokens (`after=`, shared.consistency) are waited for once the caller is known
router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[TransferService], routes.CALL]

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


@router.post("/transfers", status_code=201, tags=["transfers"])
async def request_transfer(body: TransferIn, call: Call) -> JSONResponse:
    """Ask to move a member to another organisation: the member themselves, or their organisation's staff."""
    requested_by = body.requested_by or call.caller.display_name
    return await call.command(
        "transfer.request",
        access.member(call.pool, body.member_id),
        lambda conn, meta: call.service.transfers.request(
            conn, body.member_id, body.to_org_id, body.reason, requested_by, meta
        ),
        view=queries.transfer,
        status_code=201,
    )


@router.post("/transfers/bulk", status_code=202, tags=["transfers"])
async def request_bulk_transfer(body: BulkIn, call: Call) -> JSONResponse:
    """Move many members to one organisation (after a unit union is founded); progress at /transfers/bulk/{id}."""
    requested_by = body.requested_by or call.caller.display_name
    response = await call.command(
        "bulk.request",
        access.members(call.pool, body.member_ids, body.to_org_id),
        lambda conn, meta: call.service.transfers.request_bulk(
            conn, body.member_ids, body.to_org_id, body.reason, requested_by, meta
        ),
        answer=lambda batch_id: {"batch_id": batch_id, "status": "pending"},
        status_code=202,
    )
    call.service.bulk.wake()
    return response


@router.get("/transfers/bulk/{batch_id}", tags=["transfers"])
async def get_bulk_transfer(batch_id: UUID, call: Call) -> dict[str, Any]:
    """A bulk transfer's progress: members requested, refused (with the reason) and still pending."""
    async with call.pool.acquire() as conn:
        batch = await queries.batch(conn, batch_id)
    await call.allow("bulk.read", Target(orgs=(batch["to_org_id"],), label=f"batch:{batch_id}"))
    return batch


@router.get("/transfers/{transfer_id}", tags=["transfers"])
async def get_transfer(transfer_id: UUID, call: Call) -> dict[str, Any]:
    """A transfer and its steps."""
    t = await access.transfer(call.pool, transfer_id)
    return await call.read("transfer.read", t.target(*t.parties), lambda conn: queries.transfer(conn, transfer_id))


def _side_step(verb: Literal["release", "accept"], summary: str) -> None:
    """Release belongs to the source side and acceptance to the target side (or to the escalation organisation)."""

    async def endpoint(transfer_id: UUID, body: StepIn, call: Call) -> JSONResponse:
        t = await access.transfer(call.pool, transfer_id)
        side = t.from_org_id if verb == "release" else t.to_org_id
        by = body.by or call.caller.display_name
        take_step = call.service.transfers.release if verb == "release" else call.service.transfers.accept
        return await call.command(
            f"transfer.{verb}",
            t.acting(side, body.org_id),
            lambda conn, meta: take_step(conn, transfer_id, by, body.org_id, meta),
            view=queries.transfer_after(transfer_id),
        )

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
async def reject_transfer(transfer_id: UUID, body: RejectIn, call: Call) -> JSONResponse:
    """Either side refuses the transfer, with the reason."""
    t = await access.transfer(call.pool, transfer_id)
    org_id = body.org_id or await access.rejecting_org(call.pool, call.caller, t)
    by = body.by or call.caller.display_name
    return await call.command(
        "transfer.reject",
        t.acting(t.from_org_id, org_id, t.to_org_id) if org_id else t.target(*t.parties),
        lambda conn, meta: call.service.transfers.reject(conn, transfer_id, by, body.reason, org_id, meta),
        view=queries.transfer_after(transfer_id),
    )


@router.post("/transfers/{transfer_id}/cancel", tags=["transfers"])
async def cancel_transfer(transfer_id: UUID, body: CancelIn, call: Call) -> JSONResponse:
    """The requester withdraws the transfer before it completes: the member, or the source side."""
    t = await access.transfer(call.pool, transfer_id)
    by = body.by or call.caller.display_name
    return await call.command(
        "transfer.cancel",
        t.cancelling(),
        lambda conn, meta: call.service.transfers.cancel(conn, transfer_id, by, body.reason, meta),
        view=queries.transfer_after(transfer_id),
    )


@router.get("/members/{member_id}/transfers", tags=["transfers"])
async def get_member_transfers(member_id: UUID, call: Call) -> dict[str, Any]:
    """A member's transfers, oldest first; 404 until transfer has heard of the member."""
    return await call.read(
        "member.transfers", access.member(call.pool, member_id), lambda conn: queries.member_transfers(conn, member_id)
    )


@router.get("/organizations/{org_id}/transfers", tags=["organizations"])
async def get_organization_transfers(
    org_id: UUID,
    call: Call,
    direction: Literal["in", "out"] | None = None,
    status: TransferStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Transfers into (`in`) or out of (`out`) the organisation, newest first."""
    return await call.read(
        "organization.transfers",
        organization(org_id),
        lambda conn: queries.organization_transfers(conn, org_id, direction, status, limit),
    )


@router.get("/organizations/{org_id}/transfer-stats", tags=["organizations"])
async def get_transfer_stats(org_id: UUID, call: Call) -> dict[str, Any]:
    """Time from request to completion (count, mean, p50, p90 in seconds), in and out, and counts by status."""
    return await call.read(
        "organization.transfer_stats", organization(org_id), lambda conn: queries.transfer_stats(conn, org_id)
    )


# OpenAPI links: what each creation's answer gives the operations that take its id (shared.web.links)
declare(
    router,
    Link(
        "POST /transfers",
        "transfer_id",
        "GET /transfers/{transfer_id}",
        "POST /transfers/{transfer_id}/release",
        "POST /transfers/{transfer_id}/accept",
        "POST /transfers/{transfer_id}/reject",
        "POST /transfers/{transfer_id}/cancel",
    ),
    Link("POST /transfers", "member_id", "GET /members/{member_id}/transfers"),
    Link("POST /transfers", "to_org_id", "GET /organizations/{org_id}/transfers", param="org_id"),
    Link("POST /transfers/bulk", "batch_id", "GET /transfers/bulk/{batch_id}"),
)
