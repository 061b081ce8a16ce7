"""Membership's read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.projections import Projection, Statements, batch_handler, stmt
from shared.store import Recorded

organizations = Projection("organizations", tables=["organizations"])
applications = Projection("applications", tables=["applications"])
members = Projection("members", tables=["members", "persons"])
founding = Projection("founding_suggestions", tables=["founding_suggestions"])

ALL = [organizations, applications, members, founding]


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


def _set_status(e: Recorded, status: str) -> Statements:
    return [
        stmt(
            "UPDATE members SET status = $2, updated_at = $3 WHERE member_id = $1::uuid",
            e.data["member_id"],
            status,
            e.recorded_at,
        )
    ]


@members.on("MemberSuspended")
def on_member_suspended(e: Recorded) -> Statements:
    return _set_status(e, "suspended")


@members.on("MemberReinstated")
def on_member_reinstated(e: Recorded) -> Statements:
    return _set_status(e, "active")


@members.on("MemberTerminated")
def on_member_terminated(e: Recorded) -> Statements:
    return _set_status(e, "terminated")


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


@members.on("MembershipRestored")
def on_membership_restored(e: Recorded) -> Statements:
    return _set_status(e, "active")


@members.on("MembershipLapsed")
def on_membership_lapsed(e: Recorded) -> Statements:
    return _set_status(e, "lapsed")


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
