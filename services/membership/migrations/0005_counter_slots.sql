-- The counters split in slots (issue 28): every join of an organisation added to the same rows (the organisation's
-- and each ancestor's, now and today's history), so concurrent approvals waited on one another's row locks until
-- each committed. A writing transaction now adds to the slot of its database session (one of 8); a read sums the
-- slots. What was counted before is slot 0.
ALTER TABLE member_counts ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE member_counts DROP CONSTRAINT member_counts_pkey;
ALTER TABLE member_counts ADD PRIMARY KEY (org_id, subtree, status, household_type, employment_type, slot);

ALTER TABLE member_count_history ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE member_count_history DROP CONSTRAINT member_count_history_pkey;
ALTER TABLE member_count_history ADD PRIMARY KEY (org_id, subtree, status, household_type, employment_type, slot, day);
