"""Retained membership routes (保留会籍, 恢复会籍). The lapse has no route here: staff decide it on the dues service's
case, and membership records it when it reads that decision (services/membership/consumers.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.membership import access, queries, retention
from services.membership.service import MembershipService
from shared.web import routes
from shared.web.auth import authenticate
from shared.web.consistency import read_after

router = APIRouter(dependencies=[Depends(authenticate), Depends(read_after)])
Call = Annotated[routes.Call[MembershipService], routes.CALL]


class RetainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Literal["retired", "unemployed", "unit_closed", "internal_retirement"] = Field(
        description="retired (early retirement included), unemployed, unit_closed (closure or bankruptcy); "
        "internal_retirement (内退) is refused: it leaves membership unchanged"
    )
    held_by_org_id: UUID | None = Field(
        None, description="unit_closed: the higher-level union (or the union of residence) that holds the membership"
    )
    since: date | None = Field(None, description="the day it happened (default: today)")


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Annotated[str, Field(min_length=1, max_length=500)]


@router.post("/members/{member_id}/retain", tags=["members"])
async def retain_membership(member_id: UUID, body: RetainIn, call: Call) -> JSONResponse:
    """Retain the membership (保留会籍): no dues while retained; a transfer on re-employment restores it."""
    since = body.since or datetime.now(UTC).date()
    return await call.command(
        "member.change",
        access.member(call.pool, member_id),
        lambda conn, meta: retention.retain(
            call.service.membership, conn, member_id, body.reason, body.held_by_org_id, since, meta
        ),
        view=lambda conn, _: queries.member_status(conn, member_id),
    )


@router.post("/members/{member_id}/restore", tags=["members"])
async def restore_membership(member_id: UUID, body: RestoreIn, call: Call) -> JSONResponse:
    """Restore a retained membership by hand (恢复会籍 at the same union); elsewhere, request a transfer."""
    return await call.command(
        "member.change",
        access.member(call.pool, member_id),
        lambda conn, meta: retention.restore(call.service.membership, conn, member_id, body.reason, meta),
        view=lambda conn, _: queries.member_status(conn, member_id),
    )
