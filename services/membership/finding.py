"""Finding a union: search by name, region, industry and type; the tree around an organisation; where a worker
joins (the routing rule of shared.routing, over membership's own organisations); a member by number for staff."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import asyncpg

from shared.errors import DomainError, NotFoundError
from shared.pii import PersonalDataVault
from shared.routing import Candidate, choose_target, region_levels

JSON = dict[str, Any]

_FIELDS = "org_id, name, type, subtype, parent_id, region_code, industry, accepts_members, status"


def _org(row: asyncpg.Record) -> JSON:
    return {k: row[k] for k in _FIELDS.split(", ")}


def _like(text: str) -> str:
    """A part of a name, as an ILIKE pattern that matches it literally anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _cursor(name: str, org_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{name}\x1f{org_id}".encode()).decode()


def _after(cursor: str | None) -> tuple[str | None, UUID | None]:
    if not cursor:
        return None, None
    try:
        name, org_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("\x1f")
        after = name, UUID(org_id)
    except (ValueError, UnicodeDecodeError):
        after = None
    if after is None or "\x00" in after[0]:  # PostgreSQL text cannot hold a NUL
        raise DomainError("invalid_cursor", "the cursor is not one this service gave out", status_code=422)
    return after


def _division_prefix(code: str) -> str:
    """310000 (a province) -> 31, 310100 (a prefecture) -> 3101, 310115 (a county) -> 310115 (GB/T 2260)."""
    if code.endswith("0000"):
        return code[:2]
    return code[:4] if code.endswith("00") else code


async def search(
    conn: asyncpg.Connection,
    *,
    q: str | None,
    region_code: str | None,
    industry: str | None,
    org_type: str | None,
    accepting: bool | None,
    limit: int,
    cursor: str | None,
) -> JSON:
    """Active organisations whose name holds `q` (any part, Chinese or not), in a region (a code prefix: `31` for
    Shanghai, `3101` for its districts), of an industry and type; by name. A part of a name is found through the
    index of the names' characters and pairs of characters (organizations_name_grams: pg_trgm makes no trigrams of
    Chinese under the C locale), then checked in order by ILIKE; only the filters asked for are in the statement, so
    its plan can use their indexes."""
    after_name, after_id = _after(cursor)
    where = ["status = 'active'"]
    args: list[Any] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if q:
        where.append(f"name_grams(name) @> query_grams({arg(q)}::text) AND name ILIKE {arg(_like(q))}")
    if region_code:
        where.append(f"region_code LIKE {arg(_division_prefix(region_code) + '%')}")
    if industry is not None:
        where.append(f"lower(industry) = lower({arg(industry)})")
    if org_type is not None:
        where.append(f"type = {arg(org_type)}")
    if accepting is not None:
        where.append(f"accepts_members = {arg(accepting)}")
    if after_name is not None:
        where.append(f"(name, org_id) > ({arg(after_name)}, {arg(after_id)}::uuid)")
    rows = await conn.fetch(
        f"SELECT {_FIELDS} FROM organizations WHERE {' AND '.join(where)} ORDER BY name, org_id LIMIT {arg(limit + 1)}",
        *args,
    )
    items = [_org(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return {"items": items, "next_cursor": _cursor(last["name"], last["org_id"]) if last else None}


async def children(conn: asyncpg.Connection, org_id: UUID) -> JSON:
    if not await conn.fetchval("SELECT 1 FROM organizations WHERE org_id = $1", org_id):
        raise NotFoundError("organization", org_id)
    rows = await conn.fetch(
        f"SELECT {_FIELDS}, (SELECT count(*) FROM organizations c WHERE c.parent_id = o.org_id) AS children"
        " FROM organizations o WHERE parent_id = $1 ORDER BY name, org_id",
        org_id,
    )
    return {"org_id": org_id, "items": [{**_org(r), "children": r["children"]} for r in rows]}


async def path(conn: asyncpg.Connection, org_id: UUID) -> JSON:
    """From the root (the national or a provincial federation) down to the organisation."""
    found = await conn.fetchval("SELECT path FROM organizations WHERE org_id = $1", org_id)
    if found is None:
        raise NotFoundError("organization", org_id)
    ids = [UUID(part) for part in found.strip("/").split("/")]
    rows = {
        r["org_id"]: r for r in await conn.fetch(f"SELECT {_FIELDS} FROM organizations WHERE org_id = ANY($1)", ids)
    }
    return {"org_id": org_id, "path": [_org(rows[i]) for i in ids if i in rows]}


_BASIS = {"enterprise": "employer_union", "joint": "joint_union"}


async def where_to_join(
    conn: asyncpg.Connection,
    *,
    credit_code: str | None,
    employer_name: str | None,
    region_code: str,
    industry: str | None,
) -> JSON:
    """The union that would take the worker, as a transfer would route them (shared.routing): the employer's own
    union (by its credit code, or by a name that names one enterprise union in the area), else the federation or
    joint union nearest the place of work or of the employer's industry; then the others that cover the area."""
    levels = region_levels(region_code)
    rows = await conn.fetch(
        f"SELECT {_FIELDS}, credit_code FROM organizations"
        " WHERE status = 'active' AND accepts_members AND (credit_code = $1 OR region_code = ANY($2::text[]))",
        credit_code,
        levels,
    )
    code = credit_code
    if code is None and employer_name:
        named = [r for r in rows if r["type"] == "enterprise" and employer_name.casefold() in r["name"].casefold()]
        code = named[0]["credit_code"] if len(named) == 1 else None
    candidates = [
        Candidate(r["org_id"], r["type"], r["region_code"], r["subtype"], r["credit_code"], r["industry"]) for r in rows
    ]
    chosen = choose_target(code or "", region_code, industry, candidates)
    by_id = {r["org_id"]: r for r in rows}
    covering = sorted(
        (r for r in rows if r["type"] in {"joint", "federation"} and r["org_id"] != chosen),
        key=lambda r: (levels.index(r["region_code"]) if r["region_code"] in levels else len(levels), r["name"]),
    )
    recommended = None
    if chosen is not None:
        row = by_id[chosen]
        basis = _BASIS.get(row["type"]) or f"{row['subtype']}_federation"
        recommended = {**_org(row), "basis": basis}
    return {
        "region_code": region_code,
        "recommended": recommended,
        "also_covering": [_org(r) for r in covering[:10]],
    }


async def member_by_key(
    conn: asyncpg.Connection, vault: PersonalDataVault, id_number: str | None, member_no: str | None
) -> UUID:
    """The member an identity number (through its blind index) or a member number names; 404 when none."""
    if id_number is not None:
        return await member_by_blind_index(conn, vault.blind_index(id_number))
    return await member_by_number(conn, str(member_no))


async def member_by_number(conn: asyncpg.Connection, member_no: str) -> UUID:
    found: UUID | None = await conn.fetchval("SELECT member_id FROM members WHERE member_no = $1", member_no)
    if found is None:
        raise DomainError("member_not_found", "no member holds that number", status_code=404)
    return found


async def member_by_blind_index(conn: asyncpg.Connection, blind_index: str) -> UUID:
    found: UUID | None = await conn.fetchval("SELECT member_id FROM persons WHERE id_blind_index = $1", blind_index)
    if found is None:
        raise DomainError("member_not_found", "no member holds that identity number", status_code=404)
    return found
