-- Membership's read models. Personal data is kept only as ciphertext; views decrypt and mask it.

CREATE TABLE IF NOT EXISTS organizations (
    org_id          uuid PRIMARY KEY,
    name            text NOT NULL,
    type            text NOT NULL,
    subtype         text,
    parent_id       uuid,
    path            text NOT NULL,  -- '/<root>/.../<org_id>/': a subtree is a path prefix
    region_code     text NOT NULL,
    credit_code     text,
    industry        text,
    accepts_members boolean NOT NULL,
    status          text NOT NULL DEFAULT 'active',
    registered_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS organizations_path ON organizations (path text_pattern_ops);
CREATE INDEX IF NOT EXISTS organizations_credit_code ON organizations (credit_code) WHERE credit_code IS NOT NULL;

CREATE TABLE IF NOT EXISTS applications (
    application_id  uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    org_id          uuid NOT NULL,
    status          text NOT NULL,
    reason          text,
    reviewer        text,
    submitted_at    timestamptz NOT NULL,
    decided_at      timestamptz
);

-- join once: one row per person who ever joined, by the keyed hash of their identity number
CREATE TABLE IF NOT EXISTS persons (
    id_blind_index  text PRIMARY KEY,
    member_id       uuid NOT NULL UNIQUE
);

CREATE SEQUENCE IF NOT EXISTS member_no_seq AS bigint;

CREATE TABLE IF NOT EXISTS members (
    member_id            uuid PRIMARY KEY,
    member_no            text NOT NULL UNIQUE,
    org_id               uuid NOT NULL,
    status               text NOT NULL,
    joined_at            date NOT NULL,
    household_type       text NOT NULL,
    employment_type      text NOT NULL,
    employer_credit_code text,
    employer_name        text,
    name_enc             text,
    id_number_enc        text,
    phone_enc            text,
    erased               boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS members_roster ON members (org_id, member_id);
CREATE INDEX IF NOT EXISTS members_employer ON members (org_id, employer_credit_code) WHERE status = 'active';

CREATE TABLE IF NOT EXISTS founding_suggestions (
    org_id               uuid NOT NULL,
    employer_credit_code text NOT NULL,
    employer_name        text,
    active_members       integer NOT NULL,
    threshold            integer NOT NULL,
    suggested_at         timestamptz NOT NULL,
    PRIMARY KEY (org_id, employer_credit_code)
);

-- the dossier reads the log directly: own events and consumed ones, by member
CREATE INDEX IF NOT EXISTS events_member ON events ((data->>'member_id'));
CREATE INDEX IF NOT EXISTS inbox_partitionkey ON inbox ((envelope->>'partitionkey'));
