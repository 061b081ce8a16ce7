-- The kernel's tables, in the service's schema (search_path is set to it).

-- One position sequence for the service's whole log: its own events and the messages it consumed.
CREATE SEQUENCE IF NOT EXISTS log_position AS bigint;

-- Positions are handed out under a short lock, and each writer keeps a transaction-level lock named
-- after its first position until it commits or aborts. A reader asks `safe_position` for the highest
-- position below every writer still in flight, so it never passes an event that commits later with a
-- smaller position (no skipped events) and writers never wait for each other's commits.
CREATE OR REPLACE FUNCTION allocate_positions(ns bigint, n int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    first bigint;
BEGIN
    -- a projection rebuild holds this one exclusively: writers wait for it (readers do not)
    PERFORM pg_advisory_xact_lock_shared(2, (ns >> 40)::int);
    PERFORM pg_advisory_lock(ns);
    first := nextval('log_position');
    IF n > 1 THEN
        PERFORM setval('log_position', first + n - 1);
    END IF;
    PERFORM pg_advisory_xact_lock(ns + first);
    PERFORM pg_advisory_unlock(ns);
    RETURN first;
END $$;

CREATE OR REPLACE FUNCTION safe_position(ns bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    allocated bigint;
    in_flight bigint;
BEGIN
    PERFORM pg_advisory_lock(ns);
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO allocated FROM log_position;
    SELECT min(k.key) - ns INTO in_flight
    FROM (
        SELECT (l.classid::bigint << 32) | l.objid::bigint AS key
        FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ) k
    WHERE k.key > ns AND k.key < ns + (1::bigint << 40);
    PERFORM pg_advisory_unlock(ns);
    RETURN CASE WHEN in_flight IS NULL THEN allocated ELSE least(allocated, in_flight - 1) END;
END $$;

CREATE TABLE IF NOT EXISTS events (
    position        bigint PRIMARY KEY,
    stream_id       text NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    event_id        uuid NOT NULL UNIQUE,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL,
    hash            bytea NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE OR REPLACE FUNCTION refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_change();
DROP TRIGGER IF EXISTS events_no_truncate ON events;
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change();

-- Rows waiting for the relay; deleted once the broker acknowledged them.
CREATE TABLE IF NOT EXISTS outbox (
    position    bigint PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea,
    headers     jsonb NOT NULL,
    value       bytea NOT NULL
);

-- Every consumed message, whole, so read models can be rebuilt without the topic.
CREATE TABLE IF NOT EXISTS inbox (
    position     bigint PRIMARY KEY,
    source       text NOT NULL,
    event_id     uuid NOT NULL,
    event_type   text NOT NULL,
    topic        text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    envelope     jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, event_id)
);

CREATE TABLE IF NOT EXISTS checkpoints (
    name        text PRIMARY KEY,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status_code   integer NOT NULL,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- One data key per person, wrapped by the master key; erasure deletes the row (crypto-shredding).
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id   uuid PRIMARY KEY,
    wrapped_key  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS erasures (
    subject_id   uuid PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now()
);
