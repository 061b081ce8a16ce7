-- Service card read models. The events are the record; these tables are rebuilt from them on demand.

-- every number ever issued, so a number is never given twice; the member's current card has no successor
CREATE TABLE IF NOT EXISTS cards (
    card_no      text PRIMARY KEY,
    member_id    uuid NOT NULL,
    member_no    text NOT NULL,
    status       text NOT NULL,
    org_id       uuid NOT NULL,
    issued_at    timestamptz NOT NULL,
    replaced_by  text,
    updated_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cards_current ON cards (member_id) WHERE replaced_by IS NULL;

CREATE TABLE IF NOT EXISTS catalog_items (
    item_id          uuid PRIMARY KEY,
    name             text NOT NULL,
    category         text NOT NULL,
    provider         text NOT NULL,
    standard         text NOT NULL,
    quota_per_year   integer,
    service_points   jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'available',
    published_at     timestamptz NOT NULL,
    withdrawn_at     timestamptz,
    withdraw_reason  text
);
CREATE INDEX IF NOT EXISTS catalog_items_category ON catalog_items (category, published_at);

CREATE TABLE IF NOT EXISTS redemptions (
    redemption_id   uuid PRIMARY KEY,
    member_id       uuid NOT NULL,
    card_no         text NOT NULL,
    item_id         uuid NOT NULL,
    category        text NOT NULL,
    org_id          uuid NOT NULL,
    units           integer NOT NULL,
    provider_ref    text,
    year            integer NOT NULL,
    month           text NOT NULL,  -- 'YYYY-MM', China Standard Time
    status          text NOT NULL DEFAULT 'redeemed',
    redeemed_at     timestamptz NOT NULL,
    reversed_at     timestamptz,
    reverse_reason  text
);
CREATE INDEX IF NOT EXISTS redemptions_member_year ON redemptions (member_id, year, item_id);
CREATE INDEX IF NOT EXISTS redemptions_usage ON redemptions (month, org_id, category);

-- a member's consumed membership events are folded together: find them by partition key
CREATE INDEX IF NOT EXISTS inbox_partitionkey ON inbox ((envelope->>'partitionkey'));
