-- Members and broker credentials (crates/members): members are the tenant's
-- users; a member may attach one paper-trading broker account whose keys are
-- sealed through Vault transit; the daily snapshot job writes snapshots and
-- the leaderboard rows derived from them. Unqualified, identity/uuid keys
-- only, no references outside the tenant schema.

ALTER TABLE users
    ADD COLUMN leaderboard_opt_out boolean NOT NULL DEFAULT false;

CREATE TABLE broker_accounts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    broker              text NOT NULL DEFAULT 'alpaca' CHECK (broker IN ('alpaca')),
    is_paper            boolean NOT NULL DEFAULT true CHECK (is_paper),
    sealed_credentials  text NOT NULL,
    attached_by         text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT broker_accounts_one_per_user UNIQUE (user_id)
);

CREATE TABLE portfolio_snapshots (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    broker_account_id   uuid NOT NULL REFERENCES broker_accounts (id) ON DELETE CASCADE,
    snapshot_date       date NOT NULL,
    equity              double precision NOT NULL,
    cash                double precision NOT NULL,
    last_equity         double precision NOT NULL,
    daily_pnl           double precision NOT NULL,
    daily_return        double precision,
    positions           jsonb NOT NULL DEFAULT '[]'::jsonb,
    taken_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT portfolio_snapshots_member_day UNIQUE (user_id, snapshot_date)
);

CREATE TABLE leaderboard_daily (
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    broker_account_id   uuid NOT NULL REFERENCES broker_accounts (id) ON DELETE CASCADE,
    date                date NOT NULL,
    equity              double precision NOT NULL,
    last_equity         double precision NOT NULL,
    daily_pnl           double precision NOT NULL,
    daily_return        double precision,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, date)
);
CREATE INDEX leaderboard_daily_by_date ON leaderboard_daily (date);

CREATE TABLE import_previews (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    digest        text NOT NULL,
    plan          jsonb NOT NULL,
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    committed_at  timestamptz
);
