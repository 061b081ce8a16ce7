-- The log is the outbox: the relay publishes the events table in position order and remembers how far it got.
-- Rows still waiting in the old outbox table are published again from the log (the earliest of them onwards).

ALTER TABLE events ADD COLUMN IF NOT EXISTS partition_key text;

-- one row: every own event at or below `position` reached the broker (acknowledged)
CREATE TABLE IF NOT EXISTS relay_state (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- per partition, the last offset the broker acknowledged and the position of that event: a broker that no longer
-- holds it forgot what it acknowledged (restarted empty, the topic recreated), so the relay publishes again
CREATE TABLE IF NOT EXISTS relay_offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    last_offset bigint NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- what the relay did beyond publishing: republished the log (asked, or finding the broker had forgotten)
CREATE TABLE IF NOT EXISTS relay_log (
    at              timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL,
    from_position   bigint NOT NULL,
    events          bigint NOT NULL,
    reason          text NOT NULL
);

DO $$
BEGIN
    IF to_regclass('outbox') IS NOT NULL THEN
        INSERT INTO relay_state (position)
        SELECT coalesce((SELECT min(position) - 1 FROM outbox), (SELECT max(position) FROM events), 0)
        ON CONFLICT DO NOTHING;
        DROP TABLE outbox;
    END IF;
END $$;
INSERT INTO relay_state (position) VALUES (0) ON CONFLICT DO NOTHING;
