-- The working-day calendar: the State Council's notice of each year loaded so far (WorkingCalendarLoaded); every
-- other year is counted provisionally on the statutory rule (shared/workdays.py). Part of the work queue's read
-- model, rebuilt with it, so a rebuild counts each clock on the calendar known when it was first counted.
CREATE TABLE IF NOT EXISTS work_calendars (
    year                 integer PRIMARY KEY,
    number               text NOT NULL,          -- the notice's 文号
    published            date NOT NULL,
    digest               text NOT NULL,
    notice               jsonb NOT NULL,          -- shared.workdays.Notice
    package_differences  jsonb NOT NULL DEFAULT '[]',
    loaded_by            text NOT NULL,
    loaded_at            timestamptz NOT NULL
);

-- what each clock in the queue was counted on: {working_days, provisional, counted_on: [{year, notice}]}
ALTER TABLE work_queue ADD COLUMN IF NOT EXISTS clock jsonb;
CREATE INDEX IF NOT EXISTS work_queue_provisional ON work_queue ((clock -> 'provisional'))
    WHERE (clock -> 'provisional') = 'true';

INSERT INTO rebuild_requests (name) VALUES ('work_queue') ON CONFLICT DO NOTHING;
