"""Other topics: membership's events feed the directory (projections) and end open transfers of members
who leave; its restricted topic gives members' blind indexes, by which regional employment changes (which
open transfers automatically) find the member. An erasure removes every copy of the person's blind index."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from published import membership
from services.transfer.handlers import Transfers
from services.transfer.regional import EVENT_TYPE, TOPIC, parse_employment_changed
from shared import routing
from shared.causation import caused_by
from shared.consumer import Handler
from shared.errors import DomainError
from shared.events import RESTRICTED, channel_topic
from shared.pii import PersonalDataVault
from shared.store import Recorded

log = logging.getLogger("services.transfer.consumers")

# a redelivered employment change under a new Kafka offset still names the same transfer
_TRANSFER_IDS = uuid5(NAMESPACE_URL, "urn:union:transfer:regional")
RESTRICTED_TOPIC = channel_topic(membership.TOPIC, RESTRICTED)


async def forget_identity(conn: asyncpg.Connection, member_id: str) -> None:
    """After an erasure no copy of the person's blind index stays here: not in the consumed membership events about
    them (the projection drops their `person_index` row, after this: handlers run before projections). The regional
    employment changes that named them are kept without their envelopes (no projection reads them again)."""
    await conn.execute(
        "UPDATE inbox SET envelope = envelope #- '{data,id_blind_index}' WHERE source = $2"
        " AND envelope->>'partitionkey' = $1 AND envelope->'data' ? 'id_blind_index'",
        member_id,
        membership.SOURCE,
    )


async def on_restricted_event(conn: asyncpg.Connection, entry: Recorded) -> None:
    """The blind indexes are a projection (`identities`); an erasure also removes every other copy."""
    if isinstance(erased := membership.decode(entry.name, entry.data), membership.MemberIdentityIndexErased):
        await forget_identity(conn, str(erased.member_id))


def handlers(transfers: Callable[[], Transfers], vault: PersonalDataVault) -> dict[str, Handler]:
    async def on_membership_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        """The directory is a projection; a membership that ended also ends the member's open transfer."""
        match membership.decode(entry.name, entry.data):
            case membership.MemberTerminated(member_id=member_id) | membership.MembershipLapsed(member_id=member_id):
                meta = caused_by(entry, f"service:{entry.source}")
                await transfers().withdraw_open(conn, member_id, "the membership ended", meta)
            case membership.PersonalDataErased(member_id=member_id):
                await forget_identity(conn, str(member_id))

    async def on_employment_changed(conn: asyncpg.Connection, entry: Recorded) -> None:
        if entry.metadata.get("type") != EVENT_TYPE:
            raise ValueError(f"unsupported event type {entry.metadata.get('type')!r} on {TOPIC}: expected {EVENT_TYPE}")
        change = parse_employment_changed(entry.data)
        blind_index = vault.blind_index(change.id_number)
        member = await conn.fetchrow(
            "SELECT m.member_id, m.org_id FROM person_index p JOIN directory_members m USING (member_id)"
            " WHERE p.id_blind_index = $1",
            blind_index,
        )
        if member is None:
            raise DomainError(
                "not_a_member",
                "the worker named by this employment change is not a member "
                "(a worker who is not a member applies to join instead)",
            )
        t = transfers()
        target = routing.choose_target(
            change.employer_credit_code,
            change.region_code,
            change.industry,
            await t.candidates(conn, change.employer_credit_code, change.region_code),
        )
        if target is None:
            raise DomainError(
                "no_target_organization",
                f"no union takes workers of employer {change.employer_credit_code} in region "
                f"{change.region_code}{' (' + change.industry + ')' if change.industry else ''}",
            )
        if target == member["org_id"]:
            # membership already follows this labour relationship: nothing to move, nothing to dead-letter
            log.info(
                "employment change needs no transfer: the member already belongs to the target",
                extra={"member_id": str(member["member_id"]), "org_id": str(target), "event_id": str(entry.event_id)},
            )
            return
        requester = f"regional:{entry.source}"
        await t.request(
            conn,
            member["member_id"],
            target,
            f"employment changed: {change.employer_name} from {change.effective_date.isoformat()}",
            requester,
            caused_by(entry, requester),
            transfer_id=uuid5(_TRANSFER_IDS, str(entry.event_id)),
        )

    return {
        membership.TOPIC: on_membership_event,
        RESTRICTED_TOPIC: on_restricted_event,
        TOPIC: on_employment_changed,
    }
