-- A draw reads its entrants from the AllocationEntered events (issue 30: not from the read model, where a deleted
-- row would leave a member out): one index probe per allocation instead of a scan of the log.
CREATE INDEX IF NOT EXISTS events_allocation_entered ON events ((data->>'allocation_id'))
    WHERE event_type = 'AllocationEntered';
