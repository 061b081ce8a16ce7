"""Membership's views: read models and the log, shaped for the API. Personal data is decrypted and masked here."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from published.membership import MemberStatus
from services.membership import domain, queue
from services.membership.events import MemberJoined, registry
from shared.errors import DomainError, NotFoundError
from shared.events import PUBLIC
from shared.pii import PersonalDataVault
from shared.store import EventStore
from shared.validators import mask_identity_number, mask_mobile

JSON = dict[str, Any]


async def organization(conn: asyncpg.Connection, org_id: UUID) -> JSON:
    # the active members from the counters (member_counts): O(combinations) rows, whatever the subtree's size
    row = await conn.fetchrow(
        "SELECT o.*,"
        " (SELECT coalesce(sum(n), 0)::bigint FROM member_counts c WHERE c.org_id = o.org_id AND NOT c.subtree"
        "  AND c.status = 'active') AS member_count,"
        " (SELECT coalesce(sum(n), 0)::bigint FROM member_counts c WHERE c.org_id = o.org_id AND c.subtree"
        "  AND c.status = 'active') AS subtree_member_count"
        " FROM organizations o WHERE org_id = $1",
        org_id,
    )
    if row is None:
        raise NotFoundError("organization", org_id)
    return {
        k: row[k]
        for k in (
            "org_id",
            "name",
            "type",
            "subtype",
            "parent_id",
            "region_code",
            "credit_code",
            "industry",
            "accepts_members",
            "status",
            "member_count",
            "subtree_member_count",
            "registered_at",
        )
    }


async def _person(conn: asyncpg.Connection, vault: PersonalDataVault, member_id: UUID, row: Any) -> JSON:
    return _shown(vault, await vault.keys(conn, [member_id]), member_id, row)


def _shown(vault: PersonalDataVault, keys: dict[UUID, Any], member_id: UUID, row: Any) -> JSON:
    """A member's personal data as a list shows it (the name, the rest masked), with keys fetched for the page."""
    sealed = {k: row[f"{k}_enc"] for k in ("name", "id_number", "phone") if row[f"{k}_enc"]}
    clear = vault.open(keys.get(member_id), member_id, sealed) if sealed else {}
    id_number, phone = clear.get("id_number"), clear.get("phone")
    return {
        "name": clear.get("name"),
        "id_number_masked": mask_identity_number(id_number) if id_number else None,
        "phone_masked": mask_mobile(phone) if phone else None,
    }


def _member_fields(row: Any) -> JSON:
    return {
        k: row[k]
        for k in (
            "member_id",
            "member_no",
            "org_id",
            "status",
            "joined_at",
            "household_type",
            "employment_type",
            "employer_credit_code",
            "employer_name",
            "erased",
        )
    }


async def member_status(conn: asyncpg.Connection, member_id: UUID) -> JSON:
    """What a change of status answers: the member and the status it left them in."""
    return {
        "member_id": member_id,
        "status": await conn.fetchval("SELECT status FROM members WHERE member_id = $1", member_id),
    }


async def member(conn: asyncpg.Connection, vault: PersonalDataVault, member_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)
    if row is None:
        raise NotFoundError("member", member_id)
    return {**_member_fields(row), **await _person(conn, vault, member_id, row)}


async def personal_data(conn: asyncpg.Connection, vault: PersonalDataVault, member_id: UUID) -> JSON:
    """The member's name, identity number and phone in clear (each read is audited by the route)."""
    row = await conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)
    if row is None:
        raise NotFoundError("member", member_id)
    sealed = {k: row[f"{k}_enc"] for k in ("name", "id_number", "phone") if row[f"{k}_enc"]}
    clear = await vault.decrypt(conn, member_id, sealed) if sealed else {}
    return {
        "member_id": member_id,
        "erased": row["erased"],
        **{k: clear.get(k) for k in ("name", "id_number", "phone")},
    }


async def member_as_of(
    conn: asyncpg.Connection, store: EventStore, vault: PersonalDataVault, member_id: UUID, as_of: datetime
) -> JSON:
    """The member as they were at `as_of`, folded from their events up to then."""
    stream = await store.load(conn, f"member-{member_id}")
    if not stream.events:
        raise NotFoundError("member", member_id)
    past = [e for e in stream.events if e.recorded_at <= as_of and e.event is not None]
    state = domain.fold([e.event for e in past if e.event is not None])  # the stream up to `as_of` only
    if not isinstance(state, domain.Member):
        raise DomainError("not_yet_member", f"{member_id} was not a member at {as_of.isoformat()}", status_code=404)
    joined = next(e.event for e in past if isinstance(e.event, MemberJoined))
    row = await conn.fetchrow("SELECT name_enc, id_number_enc, phone_enc FROM members WHERE member_id = $1", member_id)
    return {
        "member_id": member_id,
        "member_no": state.member_no,
        "org_id": state.org_id,
        "status": state.status,
        "joined_at": state.joined_at,
        "household_type": joined.household_type,
        "employment_type": joined.employment_type,
        "employer_credit_code": joined.employer_credit_code,
        "employer_name": joined.employer_name,
        "erased": state.erased,
        "as_of": as_of,
        **await _person(conn, vault, member_id, row),
    }


def _cursor(member_no: str) -> str:
    return base64.urlsafe_b64encode(member_no.encode()).decode()


def _after(cursor: str | None) -> str:
    if not cursor:
        return ""
    try:
        after: str | None = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        after = None
    if after is None or "\x00" in after:  # a member number never holds a NUL, and PostgreSQL text cannot
        raise DomainError("invalid_cursor", "the cursor is not one this service gave out", status_code=422)
    return after


async def roster(
    conn: asyncpg.Connection, vault: PersonalDataVault, org_id: UUID, status: str | None, limit: int, cursor: str | None
) -> JSON:
    await organization(conn, org_id)  # 404 for an unknown organisation
    rows = await conn.fetch(
        "SELECT * FROM members WHERE org_id = $1 AND ($2::text IS NULL OR status = $2) AND member_no > $3 "
        "ORDER BY member_no LIMIT $4",
        org_id,
        status,
        _after(cursor),
        limit + 1,
    )
    keys = await vault.keys(conn, [r["member_id"] for r in rows[:limit]])  # one query for the page's keys
    items = [{**_member_fields(r), **_shown(vault, keys, r["member_id"], r)} for r in rows[:limit]]
    return {"items": items, "next_cursor": _cursor(rows[limit - 1]["member_no"]) if len(rows) > limit else None}


async def stats(conn: asyncpg.Connection, org_id: UUID, subtree: bool, as_of: date | None = None) -> JSON:
    """Members by status, and active members by household and employment type: of the organisation, or of its whole
    subtree; now, or at the end of `as_of` (China Standard Time). Read from the counters (projections.counts), not
    the members: O(combinations x slots) rows now (at most 40 x 8), and one index probe per combination and slot as
    of a day, whatever the size of the subtree or the length of its history."""
    if not await conn.fetchval("SELECT 1 FROM organizations WHERE org_id = $1", org_id):
        raise NotFoundError("organization", org_id)
    if as_of is None:
        rows = await conn.fetch(
            "SELECT status, household_type, employment_type, n FROM member_counts WHERE org_id = $1 AND subtree = $2",
            org_id,
            subtree,
        )
    else:
        rows = await conn.fetch(
            """
            SELECT c.status, c.household_type, c.employment_type, coalesce(h.n, 0) AS n
            FROM member_counts c
            LEFT JOIN LATERAL (
                SELECT h.n FROM member_count_history h
                WHERE h.org_id = c.org_id AND h.subtree = c.subtree AND h.status = c.status
                  AND h.household_type = c.household_type AND h.employment_type = c.employment_type
                  AND h.slot = c.slot AND h.day <= $3
                ORDER BY h.day DESC LIMIT 1
            ) h ON true
            WHERE c.org_id = $1 AND c.subtree = $2
            """,
            org_id,
            subtree,
            as_of,
        )
    by_status = dict.fromkeys((s.value for s in MemberStatus), 0)
    by_household = dict.fromkeys((h.value for h in domain.HouseholdType), 0)
    by_employment = dict.fromkeys((t.value for t in domain.EmploymentType), 0)
    for r in rows:
        by_status[r["status"]] += r["n"]
        if r["status"] == MemberStatus.ACTIVE:
            by_household[r["household_type"]] += r["n"]
            by_employment[r["employment_type"]] += r["n"]
    view: JSON = {
        "org_id": org_id,
        "subtree": subtree,
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_household_type": by_household,
        "by_employment_type": by_employment,
    }
    if as_of is not None:
        view["as_of"] = as_of
    return view


async def history(conn: asyncpg.Connection, member_id: UUID) -> list[JSON]:
    """The dossier: every event about the member, this service's and the ones it consumed, in log order; each
    with its chain (`correlation_id`: the request that began it; `causation_id`: the request or event that caused
    it), so a card's move can be followed back through membership and transfer to the request."""
    if not await conn.fetchval("SELECT 1 FROM events WHERE stream_id = $1", f"member-{member_id}"):
        raise NotFoundError("member", member_id)
    rows = await conn.fetch(
        """
        SELECT position, event_id, event_type, schema_version, data, metadata, recorded_at, stream_id,
               NULL::jsonb AS envelope
        FROM events WHERE data->>'member_id' = $1
        UNION ALL
        SELECT position, event_id, NULL, NULL, NULL, NULL, received_at, NULL, envelope
        FROM inbox WHERE envelope->>'partitionkey' = $1
        ORDER BY position
        """,
        str(member_id),
    )
    entries = []
    for r in rows:
        if r["envelope"] is None:
            event = registry.decode(r["event_type"], r["schema_version"], _json(r["data"]))
            if event.channel != PUBLIC:
                continue  # the blind index shared with transfer: plumbing of the matching, not the member's life
            meta = _json(r["metadata"])
            entries.append(
                {
                    "position": r["position"],
                    "id": r["event_id"],
                    "source": registry.source,
                    "type": registry.wire_type(type(event)),
                    "event": event.event_name(),
                    "subject": r["stream_id"],
                    "time": r["recorded_at"],
                    "correlation_id": meta.get("correlation_id"),
                    "causation_id": meta.get("causation_id"),
                    "data": event.public_data(),
                }
            )
        else:
            env = _json(r["envelope"])
            entries.append(
                {
                    "position": r["position"],
                    "id": r["event_id"],
                    "source": env["source"],
                    "type": env["type"],
                    "event": env["type"].split(".")[2] if env["type"].count(".") == 3 else env["type"],
                    "subject": env.get("subject"),
                    "time": env["time"],
                    "correlation_id": env.get("correlationid"),
                    "causation_id": env.get("causationid"),
                    "data": env["data"],
                }
            )
    return entries


async def application(conn: asyncpg.Connection, application_id: UUID) -> JSON:
    row = await conn.fetchrow("SELECT * FROM applications WHERE application_id = $1", application_id)
    if row is None:
        raise NotFoundError("application", application_id)
    member_no = await conn.fetchval("SELECT member_no FROM members WHERE member_id = $1", row["member_id"])
    waiting = await conn.fetchrow(
        "SELECT deadline, clock, overdue FROM work_queue WHERE kind = 'application' AND item_id = $1", application_id
    )
    clock = {"respond_by": waiting["deadline"], **queue.clock_view(waiting["clock"])} if waiting else {}
    return {
        "application_id": application_id,
        "status": row["status"],
        "org_id": row["org_id"],
        "member_id": row["member_id"] if row["status"] == "approved" else None,
        "member_no": member_no,
        "reason": row["reason"],
        "reviewer": row["reviewer"],
        "submitted_at": row["submitted_at"],
        "decided_at": row["decided_at"],
        **clock,  # while it waits: the union's promise (respond_by), and the calendar it was counted on
    }


async def founding_suggestions(conn: asyncpg.Connection, org_id: UUID | None) -> list[JSON]:
    rows = await conn.fetch(
        "SELECT f.* FROM founding_suggestions f WHERE $1::uuid IS NULL OR f.org_id IN ("
        " SELECT o.org_id FROM organizations o, organizations top"
        " WHERE top.org_id = $1 AND o.path LIKE top.path || '%') ORDER BY f.suggested_at",
        org_id,
    )
    return [dict(r) for r in rows]


def _json(value: Any) -> Any:
    import json  # noqa: PLC0415

    return json.loads(value) if isinstance(value, str) else value


async def employer_count(conn: asyncpg.Connection, member_id: UUID, org_id: UUID) -> domain.EmployerCount | None:
    """How many active members of this member's employer `org_id` holds, under a lock per organisation and
    employer (two joins at once count each other); None when the member names no employer."""
    row = await conn.fetchrow(
        "SELECT o.type, m.employer_credit_code, m.employer_name FROM members m "
        "JOIN organizations o ON o.org_id = $2 WHERE m.member_id = $1",
        member_id,
        org_id,
    )
    if row is None or row["employer_credit_code"] is None:
        return None
    code = row["employer_credit_code"]
    await conn.execute("SELECT pg_advisory_xact_lock(5, hashtext($1))", f"{org_id}/{code}")
    active = await conn.fetchval(
        "SELECT count(*) FROM members WHERE org_id = $1 AND employer_credit_code = $2 AND status = 'active'",
        org_id,
        code,
    )
    done = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM founding_suggestions WHERE org_id = $1 AND employer_credit_code = $2) "
        "OR EXISTS (SELECT 1 FROM organizations WHERE credit_code = $2 AND status = 'active')",
        org_id,
        code,
    )
    return domain.EmployerCount(org_id, row["type"], code, row["employer_name"], active, done)
