"""Who may do what in transfer: one table, checked by every route (shared.auth.Guard).

Release belongs to the source side and acceptance to the target side: staff of that organisation or of one
above it (so the common parent a transfer escalates to can act for either). A member may ask to move and
may cancel their own request; system integrations read what their scopes grant.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Guard, Principal, Role, Rule, Target, target_of
from shared.directory import covers
from shared.errors import NotFoundError

guard = Guard(
    {
        "transfer.request": Rule(staff=True, member=True),  # staff of the member's current organisation
        "transfer.read": Rule(staff=True, member=True, scope="transfers:read"),
        "transfer.release": Rule(staff=True),
        "transfer.accept": Rule(staff=True),
        "transfer.reject": Rule(staff=True),
        "transfer.cancel": Rule(staff=True, member=True),  # the requester: see TransferParties.cancelling
        "member.transfers": Rule(staff=True, member=True, scope="transfers:read"),
        "organization.transfers": Rule(staff=True, scope="transfers:read"),
        "organization.transfer_stats": Rule(staff=True, scope="stats:read"),
        "bulk.request": Rule(staff=True),  # staff covering the target and every member's organisation
        "bulk.read": Rule(staff=True, scope="transfers:read"),
    }
)


class TransferParties:
    def __init__(self, row: asyncpg.Record) -> None:
        self.transfer_id: UUID = row["transfer_id"]
        self.member_id: UUID = row["member_id"]
        self.from_org_id: UUID = row["from_org_id"]
        self.to_org_id: UUID = row["to_org_id"]
        self.escalated_to: UUID | None = row["escalated_to"]
        self.status: str = row["status"]
        self.requester: str | None = row["requester"]

    def target(self, *orgs: UUID) -> Target:
        return Target(orgs=orgs, member_id=self.member_id, label=f"transfer:{self.transfer_id}")

    def cancelling(self) -> Target:
        """The requester may cancel: the member for their own request, else the source side (or above it)."""
        label = self.target().label
        if self.requester is None:  # requested before requesters were recorded: the member or the source side
            return self.target(self.from_org_id)
        if self.requester.startswith(f"{Role.MEMBER}:"):
            return Target(member_id=self.member_id, label=label)
        return Target(orgs=(self.from_org_id,), label=label)

    @property
    def parties(self) -> tuple[UUID, ...]:
        return (self.from_org_id, self.to_org_id, *((self.escalated_to,) if self.escalated_to else ()))

    def acting(self, side: UUID, org_id: UUID | None, *others: UUID) -> Target:
        """A step taken for `side` (release: the source; accept: the target), or for the organisation the body
        names if it may take that step: the escalation organisation, or for a rejection either side."""
        if org_id is None:
            return self.target(side)
        may_act = {side, *others, *((self.escalated_to,) if self.escalated_to else ())}
        return self.target(org_id) if org_id in may_act else Target(label=self.target().label)


async def transfer(pool: asyncpg.Pool, transfer_id: UUID) -> TransferParties:
    row = await pool.fetchrow(
        "SELECT transfer_id, member_id, from_org_id, to_org_id, escalated_to, status, requester FROM transfers "
        "WHERE transfer_id = $1",
        transfer_id,
    )
    if row is None:
        raise NotFoundError("transfer", transfer_id)
    return TransferParties(row)


async def member(pool: asyncpg.Pool, member_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM directory_members WHERE member_id = $1"
    return await target_of(pool, sql, member_id, "member", f"member:{member_id}")


async def members(pool: asyncpg.Pool, member_ids: list[UUID], to_org_id: UUID) -> Target:
    """A bulk transfer touches the target and every organisation the members are in now."""
    rows = await pool.fetch(
        "SELECT member_id, org_id FROM directory_members WHERE member_id = ANY($1::uuid[])", member_ids
    )
    orgs = {r["org_id"] for r in rows}
    return Target(
        orgs=(to_org_id, *orgs),
        label=f"organization:{to_org_id}",
        all_orgs=True,
        complete=len({r["member_id"] for r in rows}) == len(set(member_ids)),  # staff cannot vouch for strangers
    )


async def rejecting_org(pool: asyncpg.Pool, principal: Principal, t: TransferParties) -> UUID | None:
    """The side a staff member rejects for when they do not say: the side whose step is due, if theirs."""
    if principal.role is not Role.STAFF or principal.org_id is None:
        return None
    sides = (t.from_org_id, t.to_org_id) if t.status == "requested" else (t.to_org_id, t.from_org_id)
    covered = await covers(pool, principal.org_id, sides)
    return next((org for org, ok in zip(sides, covered, strict=True) if ok), None)
