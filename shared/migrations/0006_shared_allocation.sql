-- A writer of one event takes the allocation lock shared, so such writers no longer queue behind each other for
-- it: one nextval is atomic, and the lock only has to keep the reader's view whole (`safe_position` takes it
-- exclusively, so no writer is between its nextval and its position's transaction lock while it looks). A range of
-- several positions (nextval, then setval past it) still takes it exclusively: two ranges must not interleave.
-- Measured with 32 writers of one event each: 7,200-8,000 appends/s with the lock exclusive, 7,900-8,600 shared,
-- 9,500 with no allocation at all.
CREATE OR REPLACE FUNCTION allocate_positions(ns bigint, n int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    first bigint;
BEGIN
    -- a projection rebuild holds this one exclusively: writers wait for it (readers do not)
    PERFORM pg_advisory_xact_lock_shared(2, (ns >> 40)::int);
    IF n = 1 THEN
        PERFORM pg_advisory_lock_shared(ns);
        first := nextval('log_position');
        PERFORM pg_advisory_xact_lock(ns + first);
        PERFORM pg_advisory_unlock_shared(ns);
    ELSE
        PERFORM pg_advisory_lock(ns);
        first := nextval('log_position');
        PERFORM setval('log_position', first + n - 1);
        PERFORM pg_advisory_xact_lock(ns + first);
        PERFORM pg_advisory_unlock(ns);
    END IF;
    RETURN first;
END $$;
