"""Membership's read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

import asyncpg

from shared.projections import Projection
from shared.store import Recorded

organizations = Projection("organizations", tables=["organizations"])
applications = Projection("applications", tables=["applications"])
members = Projection("members", tables=["members", "persons"])
founding = Projection("founding_suggestions", tables=["founding_suggestions"])

ALL = [organizations, applications, members, founding]


@organizations.on("OrganizationRegistered")
async def on_organization_registered(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
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


@organizations.on("OrganizationDissolved")
async def on_organization_dissolved(conn: asyncpg.Connection, e: Recorded) -> None:
    await conn.execute("UPDATE organizations SET status = 'dissolved' WHERE org_id = $1::uuid", e.data["org_id"])


@applications.on("ApplicationSubmitted")
async def on_application_submitted(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        "INSERT INTO applications (application_id, member_id, org_id, status, submitted_at) "
        "VALUES ($1::uuid, $2::uuid, $3::uuid, 'submitted', $4) ON CONFLICT DO NOTHING",
        d["application_id"],
        d["member_id"],
        d["org_id"],
        e.recorded_at,
    )


@applications.on("ApplicationApproved")
async def on_application_approved(conn: asyncpg.Connection, e: Recorded) -> None:
    await conn.execute(
        "UPDATE applications SET status = 'approved', reviewer = $2, decided_at = $3 WHERE application_id = $1::uuid",
        e.data["application_id"],
        e.data["reviewer"],
        e.recorded_at,
    )


@applications.on("ApplicationRejected")
async def on_application_rejected(conn: asyncpg.Connection, e: Recorded) -> None:
    await conn.execute(
        "UPDATE applications SET status = 'rejected', reviewer = $2, reason = $3, decided_at = $4 "
        "WHERE application_id = $1::uuid",
        e.data["application_id"],
        e.data["reviewer"],
        e.data["reason"],
        e.recorded_at,
    )


@members.on("MemberJoined")
async def on_member_joined(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        "INSERT INTO persons (id_blind_index, member_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING",
        d["id_blind_index"],
        d["member_id"],
    )
    await conn.execute(
        """
        INSERT INTO members (member_id, member_no, org_id, status, joined_at, household_type, employment_type,
                             employer_credit_code, employer_name, name_enc, id_number_enc, phone_enc, updated_at)
        VALUES ($1::uuid, $2, $3::uuid, 'active', $4::text::date, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (member_id) DO NOTHING
        """,
        d["member_id"],
        d["member_no"],
        d["org_id"],
        d["joined_at"],
        d["household_type"],
        d["employment_type"],
        d.get("employer_credit_code"),
        d.get("employer_name"),
        d["name_enc"],
        d["id_number_enc"],
        d["phone_enc"],
        e.recorded_at,
    )


async def _set_status(conn: asyncpg.Connection, e: Recorded, status: str) -> None:
    await conn.execute(
        "UPDATE members SET status = $2, updated_at = $3 WHERE member_id = $1::uuid",
        e.data["member_id"],
        status,
        e.recorded_at,
    )


@members.on("MemberSuspended")
async def on_member_suspended(conn: asyncpg.Connection, e: Recorded) -> None:
    await _set_status(conn, e, "suspended")


@members.on("MemberReinstated")
async def on_member_reinstated(conn: asyncpg.Connection, e: Recorded) -> None:
    await _set_status(conn, e, "active")


@members.on("MemberTerminated")
async def on_member_terminated(conn: asyncpg.Connection, e: Recorded) -> None:
    await _set_status(conn, e, "terminated")


@members.on("MemberOrganizationChanged")
async def on_member_organization_changed(conn: asyncpg.Connection, e: Recorded) -> None:
    await conn.execute(
        "UPDATE members SET org_id = $2::uuid, updated_at = $3 WHERE member_id = $1::uuid",
        e.data["member_id"],
        e.data["to_org_id"],
        e.recorded_at,
    )


@members.on("PersonalDataErased")
async def on_personal_data_erased(conn: asyncpg.Connection, e: Recorded) -> None:
    await conn.execute(
        "UPDATE members SET name_enc = NULL, id_number_enc = NULL, phone_enc = NULL, erased = true, updated_at = $2 "
        "WHERE member_id = $1::uuid",
        e.data["member_id"],
        e.recorded_at,
    )


@founding.on("UnitUnionFoundingSuggested")
async def on_unit_union_founding_suggested(conn: asyncpg.Connection, e: Recorded) -> None:
    d = e.data
    await conn.execute(
        "INSERT INTO founding_suggestions (org_id, employer_credit_code, employer_name, active_members, threshold,"
        " suggested_at) VALUES ($1::uuid, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        d["org_id"],
        d["employer_credit_code"],
        d.get("employer_name"),
        d["active_members"],
        d["threshold"],
        e.recorded_at,
    )
