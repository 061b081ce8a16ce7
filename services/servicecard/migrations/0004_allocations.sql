-- Allocations of scarce places (抽签、限额) and the entitlements they grant on members' cards.

-- Read model of allocations; `taken` counts first-come places, updated in the append's transaction, and the row is
-- what entries lock: FOR UPDATE for first come (one place at a time), FOR SHARE for a draw (the draw takes it alone).
CREATE TABLE IF NOT EXISTS allocations (
    allocation_id    uuid PRIMARY KEY,
    item_id          uuid NOT NULL,
    org_id           uuid NOT NULL,
    title            text NOT NULL,
    mode             text NOT NULL,
    places           integer NOT NULL,
    taken            integer NOT NULL DEFAULT 0,
    period           text NOT NULL,
    limit_per_member integer NOT NULL,
    entries_close_at timestamptz NOT NULL,
    seed_commitment  text NOT NULL,
    drawn            boolean NOT NULL DEFAULT false,
    seed             text,
    entries_digest   text,
    winners          uuid[]
);
CREATE INDEX IF NOT EXISTS allocations_due ON allocations (entries_close_at) WHERE mode = 'draw' AND NOT drawn;

CREATE TABLE IF NOT EXISTS allocation_entries (
    allocation_id    uuid NOT NULL,
    member_id        uuid NOT NULL,
    PRIMARY KEY (allocation_id, member_id)
);

-- A draw's seed until the draw reveals it: not an event (the log is readable by the service's operators and the
-- relay), never on a topic before DrawHeld. Its SHA-256 is public from the opening.
CREATE TABLE IF NOT EXISTS allocation_seeds (
    allocation_id    uuid PRIMARY KEY,
    seed             bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS entitlements (
    entitlement_id   uuid PRIMARY KEY,
    member_id        uuid NOT NULL,
    allocation_id    uuid NOT NULL,
    item_id          uuid NOT NULL,
    expires_at       timestamptz NOT NULL,
    status           text NOT NULL,
    banned_until     timestamptz
);
CREATE INDEX IF NOT EXISTS entitlements_member ON entitlements (member_id);
CREATE INDEX IF NOT EXISTS entitlements_due ON entitlements (expires_at) WHERE status = 'granted';
