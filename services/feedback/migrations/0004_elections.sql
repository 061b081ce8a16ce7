-- Union elections (工会基层组织选举): a read model of each election, and each round's ballot box.

-- Read model (rebuildable from the election's stream): what the routes and the round sweeper look up.
CREATE TABLE IF NOT EXISTS elections (
    election_id     uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    title           text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL,
    round           integer NOT NULL DEFAULT 0,
    closes_at       timestamptz
);
CREATE INDEX IF NOT EXISTS elections_org ON elections (org_id);
CREATE INDEX IF NOT EXISTS elections_voting ON elections (closes_at) WHERE status = 'voting';

-- The ballot box of a round, as for campaigns (docs/anonymity.md): the register of who voted, and one inserted row of
-- ciphertext per ballot, in one transaction; neither is an event, neither holds a time or a sequence.
CREATE TABLE IF NOT EXISTS election_voted (
    election_id     uuid NOT NULL,
    round           integer NOT NULL,
    voter_id        uuid NOT NULL,
    PRIMARY KEY (election_id, round, voter_id)
);
CREATE TABLE IF NOT EXISTS election_sealed (
    election_id     uuid NOT NULL,
    round           integer NOT NULL,
    ciphertext      bytea NOT NULL,
    proof           bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS election_sealed_round ON election_sealed (election_id, round);

-- The published ballot set of a counted round: written by the count, in receipt order, with no link to a voter;
-- the sealed rows are deleted in the same transaction.
CREATE TABLE IF NOT EXISTS election_ballots (
    election_id     uuid NOT NULL,
    round           integer NOT NULL,
    receipt         text NOT NULL,
    ciphertext      bytea NOT NULL,
    proof           bytea NOT NULL,
    PRIMARY KEY (election_id, round, receipt)
);
