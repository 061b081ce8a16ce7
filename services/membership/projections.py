"""Membership's read models, one small function per event; applied in the append's transaction."""

from __future__ import annotations

from shared.projections import Projection, Statements, stmt
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
def on_member_joined(e: Recorded) -> Statements:
    d = e.data
    return [
        stmt(
            "INSERT INTO persons (id_blind_index, member_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING",
            d["id_blind_index"],
            d["member_id"],
        ),
        stmt(
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
        ),
    ]


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
