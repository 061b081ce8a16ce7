-- Access: the organisation tree every service checks staff tokens against, and the audit log of access.

-- Organisations and their parents, from union.membership.v1's OrganizationRegistered (membership projects its
-- own). A staff token covers its organisation and everything below it.
CREATE TABLE IF NOT EXISTS org_tree (
    org_id          uuid PRIMARY KEY,
    parent_id       uuid
);
CREATE INDEX IF NOT EXISTS org_tree_parent ON org_tree (parent_id);

-- Who read a person's data, and every refusal: actor and role from the token, never a body field.
-- Changes are not repeated here: every event's metadata carries its actor.
CREATE TABLE IF NOT EXISTS audit_log (
    audit_id        bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    role            text NOT NULL,
    action          text NOT NULL,
    target          text NOT NULL,
    outcome         text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at);
