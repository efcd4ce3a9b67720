-- The tenant template: every tenant schema gets exactly this. Statements are
-- unqualified; they run with search_path set to the tenant schema and as the
-- tenant's role, so the role owns what it creates. Identity columns and uuid
-- keys only: a `serial` default would name a sequence of one schema.
CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    permissions text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text NOT NULL,
    display_name    text NOT NULL DEFAULT '',
    password_hash   text,
    role            text NOT NULL DEFAULT 'viewer' REFERENCES roles (name),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'pending')),
    email_verified  boolean NOT NULL DEFAULT false,
    preferences     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device        text NOT NULL DEFAULT '',
    ip            text,
    user_agent    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    user_id     uuid,
    actor       text,
    action      text NOT NULL,
    result      text NOT NULL,
    ip          text,
    user_agent  text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea,
    row_hash    bytea
);
CREATE INDEX audit_log_by_time ON audit_log (occurred_at);

CREATE TABLE instruments (
    symbol      text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    asset_class text NOT NULL DEFAULT 'equity',
    currency    text NOT NULL DEFAULT 'USD',
    sector      text
);

CREATE TABLE portfolios (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    base_currency   text NOT NULL DEFAULT 'USD',
    is_public       boolean NOT NULL DEFAULT false,
    settings        jsonb NOT NULL DEFAULT '{}'::jsonb,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX portfolios_by_owner ON portfolios (owner_id);

CREATE TABLE portfolio_versions (
    portfolio_id  uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    snapshot      jsonb NOT NULL,
    changed_by    uuid,
    change        text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio_id, version)
);

CREATE TABLE positions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id    uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    symbol          text NOT NULL,
    allocation_type text NOT NULL DEFAULT 'quantity' CHECK (allocation_type IN ('quantity', 'weight')),
    quantity        numeric(28, 10),
    target_weight   numeric(12, 10),
    purchase_price  numeric(28, 10),
    purchase_date   date,
    sector          text,
    notes           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX positions_by_portfolio ON positions (portfolio_id);

CREATE TABLE prices_daily (
    symbol      text NOT NULL,
    date        date NOT NULL,
    open        double precision,
    high        double precision,
    low         double precision,
    close       double precision NOT NULL,
    adj_close   double precision,
    volume      bigint,
    CONSTRAINT prices_daily_symbol_date UNIQUE (symbol, date)
);

CREATE TABLE portfolio_metrics_daily (
    portfolio_id      uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    date              date NOT NULL,
    nav               double precision NOT NULL,
    daily_return      double precision,
    cumulative_return double precision,
    volatility_30d    double precision,
    max_drawdown      double precision,
    PRIMARY KEY (portfolio_id, date)
);

INSERT INTO roles (name, description, permissions) VALUES
    ('admin', 'Tenant administrator', '{}'),
    ('trader', 'Manages own portfolios', '{}'),
    ('viewer', 'Read-only access', '{}'),
    ('api_user', 'Machine client', '{}');
