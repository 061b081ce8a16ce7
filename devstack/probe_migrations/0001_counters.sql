CREATE TABLE IF NOT EXISTS counter_totals (
    counter_id uuid PRIMARY KEY,
    total      bigint NOT NULL,
    events     integer NOT NULL
);
CREATE TABLE IF NOT EXISTS effects (
    event_id uuid NOT NULL,
    applied  integer NOT NULL DEFAULT 1
);
