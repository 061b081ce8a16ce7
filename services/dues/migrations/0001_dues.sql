-- The dues service's read models. The events are the record; these tables are rebuilt from them on demand.

CREATE TABLE IF NOT EXISTS dues_policies (
    policy_id      uuid PRIMARY KEY,
    effective_from date NOT NULL,
    rate           numeric NOT NULL,
    base_step      numeric NOT NULL,
    rounding       text NOT NULL,
    unpaid_months  integer NOT NULL,
    grace_days     integer NOT NULL,
    citation       text NOT NULL,
    recorded_at    timestamptz NOT NULL
);

-- one row per member the service has seen join; `assessed_through`: the last month assessed
CREATE TABLE IF NOT EXISTS dues_accounts (
    member_id        uuid PRIMARY KEY,
    member_no        text NOT NULL UNIQUE,
    org_id           uuid NOT NULL,
    status           text NOT NULL,
    opened_on        date NOT NULL,
    assessed_through date,
    wage_base        numeric,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dues_accounts_review ON dues_accounts (assessed_through);
CREATE INDEX IF NOT EXISTS dues_accounts_org ON dues_accounts (org_id);

-- the ledger: one row per member per month
CREATE TABLE IF NOT EXISTS dues_ledger (
    member_id  uuid NOT NULL,
    month      date NOT NULL,
    org_id     uuid NOT NULL,
    liable     boolean NOT NULL,
    reason     text,
    expected   numeric,
    paid       numeric NOT NULL DEFAULT 0,
    exempt     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (member_id, month)
);
CREATE INDEX IF NOT EXISTS dues_ledger_org_month ON dues_ledger (org_id, month);

CREATE TABLE IF NOT EXISTS dues_payments (
    payment_ref text PRIMARY KEY,
    member_id   uuid NOT NULL,
    month       date NOT NULL,
    amount      numeric NOT NULL,
    paid_by     text NOT NULL,
    paid_on     date NOT NULL
);

CREATE TABLE IF NOT EXISTS dues_cases (
    case_id       uuid PRIMARY KEY,
    member_id     uuid NOT NULL,
    org_id        uuid NOT NULL,
    unpaid_months date[] NOT NULL,
    opened_on     date NOT NULL,
    educated_on   date,
    educated_by   text,
    grace_until   date,
    closed_on     date,
    close_reason  text
);
CREATE INDEX IF NOT EXISTS dues_cases_open ON dues_cases (org_id) WHERE closed_on IS NULL;

-- members' statuses over time, as membership told them: reports as of any date
CREATE TABLE IF NOT EXISTS member_status_history (
    member_id uuid NOT NULL,
    position  bigint NOT NULL,
    org_id    uuid NOT NULL,
    status    text NOT NULL,
    since     date NOT NULL,
    PRIMARY KEY (member_id, position)
);
CREATE INDEX IF NOT EXISTS member_status_history_since ON member_status_history (since);

CREATE TABLE IF NOT EXISTS checkoff_remittances (
    remittance_id   uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    month           date NOT NULL,
    file_name       text NOT NULL,
    lines           integer NOT NULL,
    matched         integer NOT NULL,
    partial         integer NOT NULL,
    already_applied integer NOT NULL,
    total           numeric NOT NULL,
    unmatched       jsonb NOT NULL,
    imported_at     timestamptz NOT NULL
);
