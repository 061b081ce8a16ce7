-- The inbox keeps a consumed message's envelope only where this service reads it again: a projection that handles
-- it (a rebuild replays it) or a read declared by the service (membership's dossier, the card service's member
-- facts). Every other message keeps its row (the dedup by (source, event_id), its position, its Kafka coordinates)
-- without the envelope: at a province's size most consumed messages are other services' events nobody here reads
-- twice (feedback kept 964 MB of envelopes for 66 MB of read models at 500,000 members). The source's log position
-- moves to a column of its own, so that "consumed through P" (consumed_positions) needs no envelope.
ALTER TABLE inbox ALTER COLUMN envelope DROP NOT NULL;
ALTER TABLE inbox ADD COLUMN IF NOT EXISTS source_position bigint;

CREATE OR REPLACE FUNCTION note_consumed_positions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consumed_positions AS c (source, topic, kafka_partition, position)
    SELECT source, topic, kafka_partition, max(coalesce(source_position, (envelope->>'position')::bigint))
    FROM consumed
    WHERE source_position IS NOT NULL OR envelope->>'position' IS NOT NULL
    GROUP BY source, topic, kafka_partition
    ON CONFLICT (source, topic, kafka_partition)
        DO UPDATE SET position = greatest(c.position, excluded.position), updated_at = now()
        WHERE excluded.position > c.position;
    RETURN NULL;
END $$;
