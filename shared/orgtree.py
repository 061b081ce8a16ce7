"""The organisation tree every service checks staff tokens against, projected from union.membership.v1.

Membership projects its own OrganizationRegistered events; the other services project the ones they consume.
Only the parent is kept: subtrees are walked when a token is checked (shared.auth).
"""

from __future__ import annotations

from shared.projections import Projection, Statements, stmt
from shared.store import Recorded

MEMBERSHIP_SOURCE = "/union/membership"

org_tree = Projection("org_tree", tables=["org_tree"])


@org_tree.on("OrganizationRegistered", source=MEMBERSHIP_SOURCE)
def on_organization_registered(entry: Recorded) -> Statements:
    return [
        stmt(
            "INSERT INTO org_tree (org_id, parent_id) VALUES ($1::uuid, $2::uuid) ON CONFLICT (org_id) DO NOTHING",
            entry.data["org_id"],
            entry.data.get("parent_id"),
        )
    ]
