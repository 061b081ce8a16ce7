"""Other topics: membership's events feed the directory (projections) and end open transfers of members
who leave; regional employment changes open transfers automatically."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from services.transfer import routing
from services.transfer.handlers import Transfers
from services.transfer.regional import EVENT_TYPE, TOPIC, parse_employment_changed
from shared.consumer import Handler
from shared.errors import DomainError
from shared.pii import PersonalDataVault
from shared.store import Metadata, Recorded

log = logging.getLogger("services.transfer.consumers")

# a redelivered employment change under a new Kafka offset still names the same transfer
_TRANSFER_IDS = uuid5(NAMESPACE_URL, "urn:union:transfer:regional")


def _caused_by(entry: Recorded, actor: str) -> Metadata:
    return Metadata(
        actor=actor,
        causation_id=str(entry.event_id),
        correlation_id=str(entry.event_id),
        traceparent=entry.metadata.get("traceparent"),
    )


def handlers(transfers: Callable[[], Transfers], vault: PersonalDataVault) -> dict[str, Handler]:
    async def on_membership_event(conn: asyncpg.Connection, entry: Recorded) -> None:
        """The directory is a projection; a membership that ended also ends the member's open transfer."""
        if entry.name == "MemberTerminated":
            meta = _caused_by(entry, f"service:{entry.source}")
            await transfers().withdraw_open(conn, UUID(str(entry.data["member_id"])), "the membership ended", meta)

    async def on_employment_changed(conn: asyncpg.Connection, entry: Recorded) -> None:
        if entry.metadata.get("type") != EVENT_TYPE:
            raise ValueError(f"unsupported event type {entry.metadata.get('type')!r} on {TOPIC}: expected {EVENT_TYPE}")
        change = parse_employment_changed(entry.data)
        blind_index = vault.blind_index(change.id_number)
        # the kernel keeps every consumed envelope in the inbox: keep the keyed hash there, not the number
        await conn.execute(
            "UPDATE inbox SET envelope = jsonb_set(envelope #- '{data,id_number}', '{data,id_blind_index}',"
            " to_jsonb($2::text)) WHERE position = $1",
            entry.position,
            blind_index,
        )
        member = await conn.fetchrow("SELECT member_id, org_id FROM members WHERE id_blind_index = $1", blind_index)
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
            _caused_by(entry, requester),
            transfer_id=uuid5(_TRANSFER_IDS, str(entry.event_id)),
        )

    return {
        "union.membership.v1": on_membership_event,
        TOPIC: on_employment_changed,
    }
