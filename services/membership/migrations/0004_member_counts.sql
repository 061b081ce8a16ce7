-- Reads of a union office that do not grow with the province (issue 28): counters rolled up the tree, a temporal
-- table for "as of", and an index that fits the search by a part of a name.

-- what the counters last counted each member as (their own memory, so they never depend on another read model's
-- order of application)
CREATE TABLE IF NOT EXISTS counted_members (
    member_id        uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    status           text NOT NULL,
    household_type   text NOT NULL,
    employment_type  text NOT NULL
);

-- members by (status, household, employment type): held by the organisation itself (subtree = false) and held
-- anywhere in its subtree (subtree = true, rolled up to every ancestor). At most 5 x 2 x 4 = 40 rows per
-- organisation and scope, whatever the number of members; a row that falls to 0 stays (it names a combination).
CREATE TABLE IF NOT EXISTS member_counts (
    org_id           uuid NOT NULL,
    subtree          boolean NOT NULL,
    status           text NOT NULL,
    household_type   text NOT NULL,
    employment_type  text NOT NULL,
    n                bigint NOT NULL,
    PRIMARY KEY (org_id, subtree, status, household_type, employment_type)
);

-- the same counters through time: `n` is the count at the end of `day` (China Standard Time), one row per key and
-- day on which it changed. "As of D" is, per key, the last row on or before D: one index probe per combination.
CREATE TABLE IF NOT EXISTS member_count_history (
    org_id           uuid NOT NULL,
    subtree          boolean NOT NULL,
    status           text NOT NULL,
    household_type   text NOT NULL,
    employment_type  text NOT NULL,
    day              date NOT NULL,
    n                bigint NOT NULL,
    PRIMARY KEY (org_id, subtree, status, household_type, employment_type, day)
);

-- finding a union by a part of its name. pg_trgm splits no Chinese into trigrams under the C locale (show_trgm
-- ('张江镇总工会') is empty), and a two-character part has no trigram anyway: so the name's characters and pairs of
-- characters, in a GIN index. A part of one character is looked up by itself, a longer one by all its pairs;
-- ILIKE then checks the order.
CREATE OR REPLACE FUNCTION name_grams(name text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT g), '{}')
    FROM (
        SELECT substr(lower(name), i, 1) AS g FROM generate_series(1, char_length(name)) AS i
        UNION ALL
        SELECT substr(lower(name), i, 2) FROM generate_series(1, char_length(name) - 1) AS i
    ) AS grams
$$;

CREATE OR REPLACE FUNCTION query_grams(part text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN char_length(part) = 1 THEN ARRAY[lower(part)]
                ELSE ARRAY(SELECT DISTINCT substr(lower(part), i, 2) FROM generate_series(1, char_length(part) - 1) AS i)
           END
$$;

CREATE INDEX IF NOT EXISTS organizations_name_grams ON organizations USING gin (name_grams(name));
-- the search's order (name, then id) and its cursor; a region is a prefix of its code (C collation: a plain btree)
CREATE INDEX IF NOT EXISTS organizations_active_name ON organizations (name, org_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS organizations_region ON organizations (region_code);

-- a platform upgraded to this version counts its members from its log once, at start
INSERT INTO rebuild_requests (name) VALUES ('member_counts') ON CONFLICT DO NOTHING;
