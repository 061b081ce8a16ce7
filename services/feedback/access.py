"""Who may do what in feedback: one table, checked by every route (shared.auth.Guard).

An opinion is only ever its holder's own: a rating is given by the member who received the service, and a
ballot is cast by the authenticated voter (the member, or the staff of the lower organisation that votes),
never for a `voter_id` someone else puts in a body: not even an admin may. Ballot checks are never written to
the audit log, refused or not: a row with a time and a voter would undo the ballot box's anonymity.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import ForbiddenError, Guard, Principal, Role, Rule, Target, target_of
from shared.errors import InvalidInputError

guard = Guard(
    {
        "rating.give": Rule(member=True, admin=False),
        "satisfaction.read": Rule(staff=True, scope="stats:read"),
        "campaign.open": Rule(staff=True),
        "campaign.read": Rule(anyone=True, scope="stats:read"),
        "campaign.close": Rule(staff=True),
        "ballot.cast": Rule(member=True, staff=True, admin=False, anonymous=True),
        "request.raise": Rule(member=True, admin=False),
        "request.read": Rule(staff=True, member=True),
        "request.answer": Rule(staff=True),
        "organization.requests": Rule(staff=True),
        # elections: called and run by the organisation's staff (or above); the record is published to everyone
        "election.call": Rule(staff=True),
        "election.nominate": Rule(staff=True),
        "election.confirm": Rule(staff=True),
        "election.open_round": Rule(staff=True),
        "election.close_round": Rule(staff=True),
        "election.read": Rule(anyone=True, scope="stats:read"),
        "election.ballot": Rule(member=True, admin=False, anonymous=True),
    }
)


def for_member(principal: Principal, member_id: UUID | None) -> Target:
    """A rating or request is for the member named in the body, or by default the token's member."""
    member = member_id or principal.member_id
    if member is None:
        raise InvalidInputError("member_id", "name the member this is for")
    return Target(member_id=member, label=f"member:{member}")


def voter(principal: Principal, voter_id: UUID | None) -> tuple[UUID | None, Target]:
    """The voter is who the token says: a member for themselves, staff for exactly their own organisation."""
    me = principal.member_id if principal.role is Role.MEMBER else principal.org_id
    if principal.role not in {Role.MEMBER, Role.STAFF} or me is None:
        return None, Target()  # the guard refuses every other role
    if voter_id is not None and voter_id != me:
        raise ForbiddenError("not_the_voter", "a ballot is cast by the voter the token names, for themselves only")
    return me, Target(member_id=me) if principal.role is Role.MEMBER else Target(orgs=(me,))


async def campaign(pool: asyncpg.Pool, campaign_id: UUID) -> Target:
    sql = "SELECT electorate_org_id AS org_id FROM campaigns WHERE campaign_id = $1"
    return await target_of(pool, sql, campaign_id, "campaign", f"campaign:{campaign_id}")


async def request(pool: asyncpg.Pool, request_id: UUID) -> Target:
    sql = "SELECT org_id, member_id FROM requests WHERE request_id = $1"
    return await target_of(pool, sql, request_id, "request", f"request:{request_id}")


async def election(pool: asyncpg.Pool, election_id: UUID) -> Target:
    sql = "SELECT org_id FROM elections WHERE election_id = $1"
    return await target_of(pool, sql, election_id, "election", f"election:{election_id}")
