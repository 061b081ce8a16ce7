-- The directory: organisations and members as union.membership.v1 tells them, one read model that every service
-- keeps (membership from its own events) instead of a copy of its own. It replaces the organisation tree that
-- staff tokens were checked against (org_tree) and the services' own copies (transfer's organizations and
-- members, feedback's directory tables), which are read models: dropped here and rebuilt from the log at start.

DROP TABLE IF EXISTS org_tree;
DROP TABLE IF EXISTS directory_orgs;
DROP TABLE IF EXISTS directory_members;

-- parents may arrive after children (organisation events are keyed by organisation), so ancestry is walked by
-- parent_id when asked rather than stored as a path
CREATE TABLE directory_orgs (
    org_id          uuid PRIMARY KEY,
    parent_id       uuid,
    name            text NOT NULL,
    type            text NOT NULL,
    subtype         text,
    region_code     text NOT NULL,
    credit_code     text,
    industry        text,
    accepts_members boolean NOT NULL,
    status          text NOT NULL DEFAULT 'active'
);
CREATE INDEX directory_orgs_parent ON directory_orgs (parent_id);
CREATE INDEX directory_orgs_credit_code ON directory_orgs (credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX directory_orgs_region ON directory_orgs (region_code, type);

-- members without personal data: number, organisation, status
CREATE TABLE directory_members (
    member_id       uuid PRIMARY KEY,
    member_no       text NOT NULL,
    org_id          uuid NOT NULL,
    status          text NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX directory_members_org ON directory_members (org_id) WHERE status = 'active';

-- moves a service applied itself ahead of membership's echo (transfer, on its own TransferCompleted): the echo
-- must not step back over a later move
CREATE TABLE directory_moves (
    transfer_id     uuid PRIMARY KEY
);

-- an organisation and every one below it (UNION, not UNION ALL: a cycle cannot loop)
CREATE FUNCTION directory_subtree(root uuid) RETURNS TABLE (org_id uuid) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE subtree(org_id) AS (
        SELECT root
        UNION
        SELECT o.org_id FROM directory_orgs o JOIN subtree s ON o.parent_id = s.org_id
    )
    SELECT org_id FROM subtree
$$;

-- an organisation and every one above it, nearest first (depth 0 is the organisation itself)
CREATE FUNCTION directory_ancestors(start uuid) RETURNS TABLE (org_id uuid, depth integer) LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(org_id, parent_id, depth) AS (
        SELECT o.org_id, o.parent_id, 0 FROM directory_orgs o WHERE o.org_id = start
        UNION ALL
        SELECT o.org_id, o.parent_id, up.depth + 1 FROM directory_orgs o JOIN up ON o.org_id = up.parent_id
        WHERE up.depth < 64
    )
    SELECT org_id, depth FROM up
$$;

-- read models a migration replaced: rebuilt from the log when the service starts, then forgotten
CREATE TABLE IF NOT EXISTS rebuild_requests (
    name            text PRIMARY KEY
);
INSERT INTO rebuild_requests (name) VALUES ('directory') ON CONFLICT DO NOTHING;
