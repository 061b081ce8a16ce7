"""Membership's read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import asyncpg

from published.membership import STATUS_CHANGES, MemberStatus
from shared.projections import Projection, Statements, batch_handler, stmt
from shared.store import Recorded
from shared.workdays import CST

organizations = Projection("organizations", tables=["organizations"])
applications = Projection("applications", tables=["applications"])
members = Projection("members", tables=["members", "persons"])
founding = Projection("founding_suggestions", tables=["founding_suggestions"])
counts = Projection("member_counts", tables=["counted_members", "member_counts", "member_count_history"])

ALL = [organizations, applications, members, founding, counts]


@organizations.on("OrganizationRegistered")
def on_organization_registered(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            """
        INSERT INTO organizations (org_id, name, type, subtype, parent_id, path, region_code, credit_code, industry,
                                   accepts_members, registered_at)
        SELECT $1::uuid, $2, $3, $4, $5::uuid,
               coalesce((SELECT path FROM organizations WHERE org_id = $5::uuid), '/') || $1::text || '/',
               $6, $7, $8, $9, $10
        ON CONFLICT (org_id) DO NOTHING
        """,
            d["org_id"],
            d["name"],
            d["type"],
            d.get("subtype"),
            d.get("parent_id"),
            d["region_code"],
            d.get("credit_code"),
            d.get("industry"),
            d["accepts_members"],
            e.recorded_at,
        )
    ]


@organizations.on("OrganizationDissolved")
def on_organization_dissolved(e: Recorded) -> Statements:
    return [stmt("UPDATE organizations SET status = 'dissolved' WHERE org_id = $1::uuid", e.data["org_id"])]


@applications.on("ApplicationSubmitted")
def on_application_submitted(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO applications (application_id, member_id, org_id, status, submitted_at) "
            "VALUES ($1::uuid, $2::uuid, $3::uuid, 'submitted', $4) ON CONFLICT DO NOTHING",
            d["application_id"],
            d["member_id"],
            d["org_id"],
            e.recorded_at,
        )
    ]


@applications.on("ApplicationApproved")
def on_application_approved(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE applications SET status = 'approved', reviewer = $2, decided_at = $3 WHERE application_id = "
            "$1::uuid",
            e.data["application_id"],
            e.data["reviewer"],
            e.recorded_at,
        )
    ]


@applications.on("ApplicationRejected")
def on_application_rejected(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE applications SET status = 'rejected', reviewer = $2, reason = $3, decided_at = $4 "
            "WHERE application_id = $1::uuid",
            e.data["application_id"],
            e.data["reviewer"],
            e.data["reason"],
            e.recorded_at,
        )
    ]


@members.on("MemberJoined")
@batch_handler
async def on_members_joined(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
    """A run of joins (an import's batch) in two multi-row statements."""
    d = [e.data for e in entries]
    await conn.execute(
        "INSERT INTO persons (id_blind_index, member_id) SELECT * FROM unnest($1::text[], $2::uuid[])"
        " ON CONFLICT DO NOTHING",
        [x["id_blind_index"] for x in d],
        [x["member_id"] for x in d],
    )
    await conn.execute(
        """
        INSERT INTO members (member_id, member_no, org_id, status, joined_at, household_type, employment_type,
                             employer_credit_code, employer_name, name_enc, id_number_enc, phone_enc, updated_at)
        SELECT m, n, o, 'active', j::date, h, t, c, en, ne, ie, pe, u
        FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::text[], $11::text[], $12::timestamptz[])
             AS x(m, n, o, j, h, t, c, en, ne, ie, pe, u)
        ON CONFLICT (member_id) DO NOTHING
        """,
        [x["member_id"] for x in d],
        [x["member_no"] for x in d],
        [x["org_id"] for x in d],
        [x["joined_at"] for x in d],
        [x["household_type"] for x in d],
        [x["employment_type"] for x in d],
        [x.get("employer_credit_code") for x in d],
        [x.get("employer_name") for x in d],
        [x["name_enc"] for x in d],
        [x["id_number_enc"] for x in d],
        [x["phone_enc"] for x in d],
        [e.recorded_at for e in entries],
    )


def _setting_status(status: MemberStatus) -> Callable[[Recorded], Statements]:
    def on_status(e: Recorded) -> Statements:
        return [
            stmt(
                "UPDATE members SET status = $2, updated_at = $3 WHERE member_id = $1::uuid",
                e.data["member_id"],
                status.value,
                e.recorded_at,
            )
        ]

    return on_status


for _name, _to in STATUS_CHANGES.items():
    if _name != "MembershipRetained":  # below: retention also names the organisation that holds the membership
        members.on(_name)(_setting_status(_to))


@members.on("MembershipRetained")
def on_membership_retained(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE members SET status = 'retained', org_id = $2::uuid, updated_at = $3 WHERE member_id = $1::uuid",
            e.data["member_id"],
            e.data["org_id"],
            e.recorded_at,
        )
    ]


@members.on("MemberOrganizationChanged")
def on_member_organization_changed(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE members SET org_id = $2::uuid, updated_at = $3 WHERE member_id = $1::uuid",
            e.data["member_id"],
            e.data["to_org_id"],
            e.recorded_at,
        )
    ]


@members.on("PersonalDataErased")
def on_personal_data_erased(e: Recorded) -> Statements:
    return [
        stmt(
            "UPDATE members SET name_enc = NULL, id_number_enc = NULL, phone_enc = NULL, erased = true, "
            "updated_at = $2 "
            "WHERE member_id = $1::uuid",
            e.data["member_id"],
            e.recorded_at,
        )
    ]


@founding.on("UnitUnionFoundingSuggested")
def on_unit_union_founding_suggested(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO founding_suggestions (org_id, employer_credit_code, employer_name, active_members, threshold,"
            " suggested_at) VALUES ($1::uuid, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            d["org_id"],
            d["employer_credit_code"],
            d.get("employer_name"),
            d["active_members"],
            d["threshold"],
            e.recorded_at,
        )
    ]


# --- counters: members by organisation, status, household and employment type, rolled up the tree, through time ---
#
# Each event that moves a member from one combination (organisation, status, household, employment type) to
# another takes one from the old and adds one to the new: for the organisation itself and for each of its
# ancestors' subtrees (organizations.path). A run of events is summed in memory first, so an import's thousands of
# joins are a few hundred keys. Cost per event: O(depth of the tree); a read: O(combinations), at most 40 rows.


@dataclass(frozen=True)
class Facets:
    """What a member is counted as."""

    org_id: str
    status: str
    household_type: str
    employment_type: str


Change = Callable[[Facets | None, Recorded], Facets | None]
Key = tuple[str, bool, str, str, str]  # org_id, subtree, status, household_type, employment_type


async def _count(conn: asyncpg.Connection, entries: Sequence[Recorded], change: Change) -> None:
    ids = list(dict.fromkeys(str(e.data["member_id"]) for e in entries))
    counted: dict[str, Facets | None] = dict.fromkeys(ids)
    for r in await conn.fetch(
        "SELECT member_id::text, org_id::text, status, household_type, employment_type FROM counted_members"
        " WHERE member_id = ANY($1::uuid[])",
        ids,
    ):
        counted[r["member_id"]] = Facets(r["org_id"], r["status"], r["household_type"], r["employment_type"])
    moves: list[tuple[Facets | None, Facets, date]] = []
    moved: set[str] = set()
    for e in entries:
        member_id = str(e.data["member_id"])
        old = counted[member_id]
        new = change(old, e)
        if new is None or new == old:
            continue
        counted[member_id] = new
        moved.add(member_id)
        moves.append((old, new, e.recorded_at.astimezone(CST).date()))
    if not moves:
        return
    orgs = {f.org_id for old, new, _ in moves for f in (old, new) if f is not None}
    paths = {
        r["org_id"]: r["path"].strip("/").split("/")
        for r in await conn.fetch(
            "SELECT org_id::text, path FROM organizations WHERE org_id = ANY($1::uuid[])", list(orgs)
        )
    }
    deltas: Counter[tuple[Key, date]] = Counter()
    for old, new, day in moves:
        for facets, sign in ((old, -1), (new, 1)):
            if facets is None:
                continue
            combination = (facets.status, facets.household_type, facets.employment_type)
            deltas[(facets.org_id, False, *combination), day] += sign
            for ancestor in paths.get(facets.org_id, [facets.org_id]):
                deltas[(ancestor, True, *combination), day] += sign
    changed = {m: f for m, f in sorted(counted.items()) if m in moved and f is not None}
    await conn.execute(
        "INSERT INTO counted_members (member_id, org_id, status, household_type, employment_type)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])"
        " ON CONFLICT (member_id) DO UPDATE SET org_id = EXCLUDED.org_id, status = EXCLUDED.status,"
        " household_type = EXCLUDED.household_type, employment_type = EXCLUDED.employment_type",
        list(changed),
        [f.org_id for f in changed.values()],
        [f.status for f in changed.values()],
        [f.household_type for f in changed.values()],
        [f.employment_type for f in changed.values()],
    )
    await _add(conn, {k: n for k, n in deltas.items() if n})


def _columns(rows: Sequence[tuple[Key, Any]]) -> list[list[Any]]:
    return [[k[i] for k, _ in rows] for i in range(5)]


# each counter is split in this many slots (migration 0005): a transaction adds to its session's slot, so concurrent
# writers to one organisation's counters seldom wait on each other's row locks; a read sums the slots
COUNTER_SLOTS = 8


async def _add(conn: asyncpg.Connection, deltas: dict[tuple[Key, date], int]) -> None:
    """Add the deltas to the counters now, and to the counters at the end of each day from theirs on, in the slot of
    this database session."""
    if not deltas:
        return
    slot = conn.get_server_pid() % COUNTER_SLOTS
    now: Counter[Key] = Counter()
    for (key, _), n in deltas.items():
        now[key] += n
    # in one order of keys for every writer: two transactions that change the same counters (joins and moves in
    # one organisation, at once) then wait for each other instead of deadlocking
    rows = sorted(now.items())
    await conn.execute(
        "INSERT INTO member_counts (org_id, subtree, status, household_type, employment_type, n, slot)"
        " SELECT *, $7::smallint FROM unnest($1::uuid[], $2::boolean[], $3::text[], $4::text[], $5::text[],"
        " $6::bigint[]) ON CONFLICT (org_id, subtree, status, household_type, employment_type, slot)"
        " DO UPDATE SET n = member_counts.n + EXCLUDED.n",
        *_columns(rows),
        [n for _, n in rows],
        slot,
    )
    # one statement per layer: the first day each key changed on in this run, then the second, ... (live writes:
    # one layer, today); within a statement a key appears once, so its insert and its update of later days
    # (an event recorded on a day before one already counted) touch different rows
    by_key: dict[Key, list[tuple[date, int]]] = {}
    for (key, day), n in sorted(deltas.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        by_key.setdefault(key, []).append((day, n))
    for layer in range(max(len(days) for days in by_key.values())):
        rows_ = sorted((key, days[layer]) for key, days in by_key.items() if len(days) > layer)
        await conn.execute(
            _HISTORY,
            *_columns(rows_),
            [day for _, (day, _) in rows_],
            [n for _, (_, n) in rows_],
            slot,
        )


_HISTORY = """
WITH x AS (
    SELECT *, $8::smallint AS slot
    FROM unnest($1::uuid[], $2::boolean[], $3::text[], $4::text[], $5::text[], $6::date[], $7::bigint[])
        AS x(org_id, subtree, status, household_type, employment_type, day, delta)
),
later AS (
    UPDATE member_count_history h SET n = h.n + x.delta FROM x
    WHERE (h.org_id, h.subtree, h.status, h.household_type, h.employment_type, h.slot)
        = (x.org_id, x.subtree, x.status, x.household_type, x.employment_type, x.slot) AND h.day > x.day
)
INSERT INTO member_count_history (org_id, subtree, status, household_type, employment_type, slot, day, n)
SELECT x.org_id, x.subtree, x.status, x.household_type, x.employment_type, x.slot, x.day,
       coalesce((SELECT h.n FROM member_count_history h
                 WHERE (h.org_id, h.subtree, h.status, h.household_type, h.employment_type, h.slot)
                     = (x.org_id, x.subtree, x.status, x.household_type, x.employment_type, x.slot)
                   AND h.day <= x.day
                 ORDER BY h.day DESC LIMIT 1), 0) + x.delta
FROM x
ON CONFLICT (org_id, subtree, status, household_type, employment_type, slot, day) DO UPDATE SET n = EXCLUDED.n
"""


def _joined(old: Facets | None, e: Recorded) -> Facets | None:
    if old is not None:
        return None  # counted already
    d = e.data
    return Facets(str(d["org_id"]), "active", d["household_type"], d["employment_type"])


def _status(status: str) -> Change:
    def change(old: Facets | None, _: Recorded) -> Facets | None:
        return None if old is None else replace(old, status=status)

    return change


def _moved(old: Facets | None, e: Recorded) -> Facets | None:
    return None if old is None else replace(old, org_id=str(e.data["to_org_id"]))


def _retained(old: Facets | None, e: Recorded) -> Facets | None:
    return None if old is None else replace(old, status="retained", org_id=str(e.data["org_id"]))


def _counting(event_name: str, change: Change) -> None:
    async def handler(conn: asyncpg.Connection, entries: Sequence[Recorded]) -> None:
        await _count(conn, entries, change)

    handler.__name__ = f"count_{event_name}"
    counts.on(event_name)(batch_handler(handler))


_counting("MemberJoined", _joined)
_counting("MemberOrganizationChanged", _moved)
for _name, _to in STATUS_CHANGES.items():
    _counting(_name, _retained if _name == "MembershipRetained" else _status(_to.value))
