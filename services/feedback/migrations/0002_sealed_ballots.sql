-- Ballots sealed to their campaign's public key (docs/anonymity.md, services/feedback/sealing.py).
--
-- The box of 0001 was one row per campaign that every ballot rewrote: its dead row versions, the WAL and any backup
-- kept each version, stamped with the transaction that also wrote the voter's `voted` row, so subtracting versions
-- gave each voter's score. It is renamed, emptied at start-up into sealed rows (ballot_box.seal_plaintext_boxes),
-- and never written again.
ALTER TABLE ballot_box RENAME TO plaintext_ballot_box;

-- One row per campaign, written when it opens and when it closes, never by a ballot.
CREATE TABLE ballot_box (
    campaign_id     uuid PRIMARY KEY,
    -- the campaign's public keys; the private ones are derived from BALLOT_MASTER_KEY in memory, never stored
    public_key      bytea NOT NULL,
    -- closed: the sealed ballots were added up and opened (or discarded), then deleted
    counted         boolean NOT NULL DEFAULT false,
    -- closed below the minimum turnout: the ballots were deleted unopened
    discarded       boolean NOT NULL DEFAULT false,
    -- opened by the close, sorted by content; only if the results are shown
    comments        text[] NOT NULL DEFAULT '{}'
);

-- One row per ballot, inserted and never updated: ciphertext only, the same size for every ballot (score and
-- comment, with or without one). No key, no time, no sequence. Kept inline (PLAIN): no TOAST chunks to chase.
CREATE TABLE sealed_ballots (
    campaign_id     uuid NOT NULL,
    score           bytea NOT NULL,
    comment         bytea NOT NULL
);
ALTER TABLE sealed_ballots ALTER COLUMN score SET STORAGE PLAIN, ALTER COLUMN comment SET STORAGE PLAIN;
CREATE INDEX sealed_ballots_campaign ON sealed_ballots (campaign_id);
