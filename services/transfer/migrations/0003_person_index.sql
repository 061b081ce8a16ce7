-- Members' identity-number blind indexes, from membership's restricted topic (never a public one): how a regional
-- employment change, which names the worker by identity number, finds the member. A member's row goes, and every
-- other copy of their blind index here with it, when their personal data is erased (services/transfer/consumers.py).
CREATE TABLE IF NOT EXISTS person_index (
    member_id       uuid PRIMARY KEY,
    id_blind_index  text NOT NULL
);
CREATE INDEX IF NOT EXISTS person_index_blind_index ON person_index (id_blind_index);

-- what the directory held before: MemberJoined used to carry the index on the public topic
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'members' AND column_name = 'id_blind_index') THEN
        INSERT INTO person_index (member_id, id_blind_index)
            SELECT member_id, id_blind_index FROM members WHERE id_blind_index IS NOT NULL
            ON CONFLICT DO NOTHING;
        ALTER TABLE members DROP COLUMN id_blind_index;
    END IF;
END $$;

-- the copies of a blind index an erasure must find: consumed membership events about the member, and regional
-- employment changes (their inbox rows keep the index in place of the identity number)
CREATE INDEX IF NOT EXISTS inbox_membership_member ON inbox ((envelope->>'partitionkey'))
    WHERE source = '/union/membership';
CREATE INDEX IF NOT EXISTS inbox_regional_blind_index ON inbox ((envelope->'data'->>'id_blind_index'))
    WHERE source NOT LIKE '/union/%';
