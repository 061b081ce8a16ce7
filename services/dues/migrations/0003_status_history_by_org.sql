-- members by status as of a date reads only the members who were ever in the subtree: found by their organisation
CREATE INDEX IF NOT EXISTS member_status_history_org ON member_status_history (org_id, member_id);
