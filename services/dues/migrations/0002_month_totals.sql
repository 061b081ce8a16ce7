-- The dues report's read model: each organisation's month as totals, kept by the ledger projection with each change
-- of a ledger row (services/dues/projections.py), so a report reads organisations x months, never the members. A row
-- counts as the report counts it: expected and arrears only while liable and not exempt; collected whatever was paid.
CREATE TABLE IF NOT EXISTS dues_month_totals (
    org_id         uuid NOT NULL,
    month          date NOT NULL,
    expected       numeric NOT NULL DEFAULT 0,
    collected      numeric NOT NULL DEFAULT 0,
    arrears        numeric NOT NULL DEFAULT 0,
    members_liable bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, month)
);

INSERT INTO dues_month_totals (org_id, month, expected, collected, arrears, members_liable)
SELECT org_id, month,
       sum(CASE WHEN liable AND NOT exempt THEN coalesce(expected, 0) ELSE 0 END),
       sum(paid),
       sum(CASE WHEN liable AND NOT exempt THEN greatest(coalesce(expected, 0) - paid, 0) ELSE 0 END),
       count(*) FILTER (WHERE liable AND NOT exempt)
FROM dues_ledger GROUP BY org_id, month
ON CONFLICT (org_id, month) DO NOTHING;
