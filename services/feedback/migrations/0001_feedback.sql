-- Feedback's tables. Read models (projections, rebuildable from the log) first, then the ballot box, which
-- is the one place in the platform that is deliberately not event-sourced: see docs/anonymity.md.

-- (The directory of organisations and members is the kernel's: shared/migrations/0005_directory.sql.)

-- Redemptions as union.servicecard.v1 tells them: what a member may rate.
CREATE TABLE IF NOT EXISTS redemptions (
    redemption_id   uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    item_id         uuid NOT NULL,
    category        text NOT NULL,
    org_id          uuid NOT NULL,
    redeemed_at     timestamptz NOT NULL,
    reversed        boolean NOT NULL DEFAULT false
);

-- Ratings are not anonymous: a member rates a service they received, once.
CREATE TABLE IF NOT EXISTS ratings (
    redemption_id   uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    item_id         uuid NOT NULL,
    category        text NOT NULL,
    org_id          uuid NOT NULL,
    month           text NOT NULL,
    score           smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment         text,
    rated_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ratings_org ON ratings (org_id, category, month);

CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id       uuid PRIMARY KEY,
    title             text NOT NULL,
    subject_type      text NOT NULL,
    subject_id        uuid NOT NULL,
    electorate_org_id uuid NOT NULL,
    electorate        text NOT NULL,
    opens_at          timestamptz NOT NULL,
    closes_at         timestamptz NOT NULL,
    min_turnout       integer NOT NULL,
    eligible          integer NOT NULL,
    closed_at         timestamptz,
    close_reason      text,
    turnout           integer,
    results           jsonb
);
CREATE INDEX IF NOT EXISTS campaigns_open ON campaigns (closes_at) WHERE closed_at IS NULL;

-- The electorate, fixed when the campaign opened (from CampaignOpened.eligible_voters).
CREATE TABLE IF NOT EXISTS eligible_voters (
    campaign_id     uuid NOT NULL,
    voter_id        uuid NOT NULL,
    PRIMARY KEY (campaign_id, voter_id)
);

CREATE TABLE IF NOT EXISTS requests (
    request_id      uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    org_id          uuid NOT NULL,
    category        text NOT NULL,
    text            text NOT NULL,
    raised_at       timestamptz NOT NULL,
    answered_at     timestamptz,
    answered_by     text,
    answer          text
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (org_id, raised_at) WHERE answered_at IS NULL;

-- The ballot box. Not projections: nothing in the log rebuilds them, and a rebuild never touches them.
--
-- `voted` is the register of who has voted: no score, no time, no sequence. `ballot_box` is ONE row per
-- campaign holding the counts per score and the comments, kept sorted by content; every ballot updates that
-- same row. So no row exists per ballot, nothing records order or time of a ballot, and the row's system
-- columns (xmin, ctid) only ever name the last ballot's transaction, which touched every column alike.
-- A ballot and its `voted` row are written in one transaction: no double vote, no lost ballot.
CREATE TABLE IF NOT EXISTS voted (
    campaign_id     uuid NOT NULL,
    voter_id        uuid NOT NULL,
    PRIMARY KEY (campaign_id, voter_id)
);

CREATE TABLE IF NOT EXISTS ballot_box (
    campaign_id     uuid PRIMARY KEY,
    score_1         integer NOT NULL DEFAULT 0,
    score_2         integer NOT NULL DEFAULT 0,
    score_3         integer NOT NULL DEFAULT 0,
    score_4         integer NOT NULL DEFAULT 0,
    score_5         integer NOT NULL DEFAULT 0,
    comments        text[] NOT NULL DEFAULT '{}',
    -- closed below the minimum turnout: the counts and comments were wiped unread
    discarded       boolean NOT NULL DEFAULT false
);
