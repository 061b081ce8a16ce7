"""The member's own view: where their matters stand, from membership's read models and the events it consumed
(transfers, the card and its redemptions, requests), never from another service's tables.

Benefits this year are the facts the card service published (items with their yearly quota, redemptions and
reversals of the quota year) summed up; `left` is shown for the member's information only: whether a redemption
may go ahead is decided by the card service alone, when it is asked.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.membership import queries, queue
from shared.pii import PersonalDataVault
from shared.workdays import CST

JSON = dict[str, Any]

_CARD_STATUS = {
    "CardIssued": "active",
    "CardReissued": "active",
    "CardUnfrozen": "active",
    "CardFrozen": "frozen",
    "CardRevoked": "revoked",
}

# the organisation that acted, by event: its own field where it has one, else the side whose step it was
_ACTING = {
    "TransferRequested": "from_org_id",
    "TransferReleased": "from_org_id",
    "TransferAccepted": "to_org_id",
    "TransferCompleted": "to_org_id",
    "TransferEscalated": "escalated_to_org_id",
    "MemberOrganizationChanged": "to_org_id",
    "CardOrganizationChanged": "to_org_id",
}


def _acting_org(event: str, data: JSON) -> Any:
    return data.get("on_behalf_of") or data.get(_ACTING.get(event, "org_id"))


def _card(events: list[JSON]) -> JSON | None:
    card: JSON | None = None
    for e in events:
        status = _CARD_STATUS.get(e["event"])
        if status is not None:
            d = e["data"]
            card = {"card_no_masked": d.get("card_no_masked") or (card or {}).get("card_no_masked"), "status": status}
    return card


async def _benefits(conn: asyncpg.Connection, events: list[JSON], year: int) -> list[JSON]:
    used: dict[str, int] = {}
    for e in events:
        d = e["data"]
        if d.get("year") != year:
            continue
        if e["event"] == "BenefitRedeemed":
            used[d["item_id"]] = used.get(d["item_id"], 0) + int(d["units"])
        elif e["event"] == "RedemptionReversed":
            used[d["item_id"]] = used.get(d["item_id"], 0) - int(d["units"])
    rows = await conn.fetch(
        "SELECT envelope FROM inbox WHERE envelope->>'partitionkey' = ANY($1::text[]) ORDER BY position", list(used)
    )
    items: dict[str, JSON] = {}
    for r in rows:
        env = json.loads(r["envelope"]) if isinstance(r["envelope"], str) else r["envelope"]
        if env["type"].endswith(".ServiceItemPublished.v1"):
            items[env["data"]["item_id"]] = env["data"]
    out = []
    for item_id, units in used.items():
        item = items.get(item_id, {})
        quota = item.get("quota_per_year")
        out.append(
            {
                "item_id": item_id,
                "name": item.get("name"),
                "category": item.get("category"),
                "used": units,
                "quota_per_year": quota,
                "left": None if quota is None else max(quota - units, 0),
            }
        )
    return out


def _requests(events: list[JSON]) -> list[JSON]:
    requests: dict[str, JSON] = {}
    for e in events:
        d = e["data"]
        if e["event"] == "RequestRaised":
            requests[d["request_id"]] = {
                "request_id": d["request_id"],
                "org_id": d["org_id"],
                "category": d.get("category"),
                "raised_at": e["time"],
                "answered": False,
                "answered_at": None,
                "answered_by": None,
            }
        elif e["event"] == "RequestAnswered" and d["request_id"] in requests:
            requests[d["request_id"]] |= {"answered": True, "answered_at": e["time"], "answered_by": d.get("by")}
    return list(requests.values())


async def overview(conn: asyncpg.Connection, vault: PersonalDataVault, member_id: UUID, now: datetime) -> JSON:
    member = await queries.member(conn, vault, member_id)
    org = await conn.fetchrow("SELECT org_id, name, type FROM organizations WHERE org_id = $1", member["org_id"])
    events = await queries.history(conn, member_id)
    open_items = await conn.fetch(
        "SELECT *, (overdue OR coalesce(deadline <= $2, false)) AS late FROM work_queue WHERE member_id = $1"
        " ORDER BY submitted_at",
        member_id,
        now,
    )
    matters = [
        {
            "kind": r["kind"],
            "id": r["item_id"],
            "step": r["step"],
            "waiting_for_org_id": r["org_id"],
            "escalated_to_org_id": r["escalated_to"],
            "submitted_at": r["submitted_at"],
            "deadline": r["deadline"],
            **queue.clock_view(r["clock"]),
            "overdue": r["late"],
        }
        for r in open_items
    ]
    return {
        "member": member,
        "status": member["status"],
        "organization": dict(org) if org else None,
        "card": _card(events),
        "benefits_this_year": await _benefits(conn, events, now.astimezone(CST).year),
        "open_transfer": next((m for m in matters if m["kind"] == "transfer"), None),
        "requests": _requests(events),
        "open_matters": matters,
        "timeline": [
            {
                "time": e["time"],
                "event": e["event"],
                "source": e["source"],
                "reason": e["data"].get("reason"),
                "org_id": _acting_org(e["event"], e["data"]),
                "by": e["data"].get("by") or e["data"].get("reviewer"),
            }
            for e in events
        ],
        "as_of": now,
    }
