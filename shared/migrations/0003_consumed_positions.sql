-- How far this service has read each other service's log, per topic partition: the highest source position
-- (the envelope's `position` extension) recorded in the inbox. Kept by a trigger in the inbox's own transaction,
-- so it moves exactly when the read models do; shared/consistency.py derives "consumed through P" from it.
CREATE TABLE IF NOT EXISTS consumed_positions (
    source           text NOT NULL,
    topic            text NOT NULL,
    kafka_partition  integer NOT NULL,
    position         bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, topic, kafka_partition)
);

-- once per INSERT statement on the inbox, whatever number of rows it wrote
CREATE OR REPLACE FUNCTION note_consumed_positions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consumed_positions AS c (source, topic, kafka_partition, position)
    SELECT source, topic, kafka_partition, max((envelope->>'position')::bigint)
    FROM consumed
    WHERE envelope->>'position' IS NOT NULL
    GROUP BY source, topic, kafka_partition
    ON CONFLICT (source, topic, kafka_partition)
        DO UPDATE SET position = greatest(c.position, excluded.position), updated_at = now()
        WHERE excluded.position > c.position;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS inbox_consumed_positions ON inbox;
CREATE TRIGGER inbox_consumed_positions AFTER INSERT ON inbox
    REFERENCING NEW TABLE AS consumed
    FOR EACH STATEMENT EXECUTE FUNCTION note_consumed_positions();

-- what the inbox already holds (messages consumed before positions were recorded carry none)
INSERT INTO consumed_positions (source, topic, kafka_partition, position)
SELECT source, topic, kafka_partition, max((envelope->>'position')::bigint)
FROM inbox
WHERE envelope->>'position' IS NOT NULL
GROUP BY source, topic, kafka_partition
ON CONFLICT DO NOTHING;
