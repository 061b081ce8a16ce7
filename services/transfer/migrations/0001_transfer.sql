-- Transfer's read models: what it knows of organisations and members (from membership's topic),
-- the transfers and their steps, the deadlines the scheduler keeps, and bulk batches.

-- the organisation tree; parents may arrive after children (org events are keyed by org id), so
-- ancestry is walked by parent_id at query time rather than stored as a path
CREATE TABLE IF NOT EXISTS organizations (
    org_id          uuid PRIMARY KEY,
    name            text NOT NULL,
    type            text NOT NULL,
    subtype         text,
    parent_id       uuid,
    region_code     text NOT NULL,
    credit_code     text,
    industry        text,
    accepts_members boolean NOT NULL,
    status          text NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS organizations_credit_code ON organizations (credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS organizations_region ON organizations (region_code, type);

-- members as transfer needs them: no personal data, only the keyed hash of the identity number
CREATE TABLE IF NOT EXISTS members (
    member_id       uuid PRIMARY KEY,
    member_no       text,
    org_id          uuid NOT NULL,
    status          text NOT NULL,
    id_blind_index  text,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS members_blind_index ON members (id_blind_index) WHERE id_blind_index IS NOT NULL;

CREATE TABLE IF NOT EXISTS transfers (
    transfer_id     uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    member_no       text,
    from_org_id     uuid NOT NULL,
    to_org_id       uuid NOT NULL,
    status          text NOT NULL,
    reason          text NOT NULL,
    requested_by    text NOT NULL,
    requested_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    escalated_to    uuid,
    batch_id        uuid,
    completed_at    timestamptz,
    duration_seconds double precision,
    closed_reason   text,
    updated_at      timestamptz NOT NULL
);
-- only one open transfer per member (the request handler checks under a lock; this is the backstop)
CREATE UNIQUE INDEX IF NOT EXISTS transfers_one_open ON transfers (member_id)
    WHERE status IN ('requested', 'released');
CREATE INDEX IF NOT EXISTS transfers_out ON transfers (from_org_id, status);
CREATE INDEX IF NOT EXISTS transfers_in ON transfers (to_org_id, status);

CREATE TABLE IF NOT EXISTS transfer_steps (
    transfer_id     uuid NOT NULL,
    version         integer NOT NULL,
    step            text NOT NULL,
    by              text,
    org_id          uuid,
    reason          text,
    at              timestamptz NOT NULL,
    PRIMARY KEY (transfer_id, version)
);

-- the scheduler's work list: written in the request's transaction, polled with FOR UPDATE SKIP LOCKED
CREATE TABLE IF NOT EXISTS deadlines (
    transfer_id     uuid PRIMARY KEY,
    due_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_at);

CREATE TABLE IF NOT EXISTS batches (
    batch_id        uuid PRIMARY KEY,
    to_org_id       uuid NOT NULL,
    reason          text NOT NULL,
    requested_by    text NOT NULL,
    status          text NOT NULL,  -- pending until every member has an outcome, then finished
    total           integer NOT NULL,
    requested_at    timestamptz NOT NULL,
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS batches_pending ON batches (requested_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS batch_items (
    batch_id        uuid NOT NULL,
    member_id       uuid NOT NULL,
    ordinal         integer NOT NULL,
    status          text NOT NULL,  -- pending, requested, refused
    transfer_id     uuid,
    code            text,
    reason          text,
    PRIMARY KEY (batch_id, member_id)
);
