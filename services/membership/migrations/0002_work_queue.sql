-- What waits for a union office: pending applications (own events), transfers awaiting a side and members'
-- requests awaiting an answer (consumed). One row per open matter; it goes when the matter is acted on.
CREATE TABLE IF NOT EXISTS work_queue (
    kind          text NOT NULL,            -- application | transfer | request
    item_id       uuid NOT NULL,
    org_id        uuid NOT NULL,            -- the organisation whose step is due
    escalated_to  uuid,                     -- where it went when its clock ran out (the parent, the common parent)
    member_id     uuid NOT NULL,
    step          text NOT NULL,            -- review | release | accept | answer
    submitted_at  timestamptz NOT NULL,
    deadline      timestamptz,              -- NULL: the official calendar of the year was not known
    overdue       boolean NOT NULL DEFAULT false,  -- recorded by an event (ApplicationOverdue, TransferEscalated)
    detail        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, item_id)
);
CREATE INDEX IF NOT EXISTS work_queue_org ON work_queue (org_id);
CREATE INDEX IF NOT EXISTS work_queue_escalated ON work_queue (escalated_to) WHERE escalated_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS work_queue_member ON work_queue (member_id);
CREATE INDEX IF NOT EXISTS work_queue_due ON work_queue (deadline) WHERE kind = 'application' AND NOT overdue;

-- finding a union by a part of its name
CREATE INDEX IF NOT EXISTS organizations_parent ON organizations (parent_id);

-- a platform upgraded to this version fills the queue from its log once, at start
INSERT INTO rebuild_requests (name) VALUES ('work_queue') ON CONFLICT DO NOTHING;
