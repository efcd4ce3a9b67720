-- Portfolios (crates/portfolio): sharing within the tenant, comment
-- threads and the activity trail. Unqualified, identity/uuid keys only, no
-- references outside the tenant schema.

CREATE TABLE portfolio_shares (
    portfolio_id  uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access        text NOT NULL CHECK (access IN ('view', 'comment', 'edit', 'admin')),
    granted_by    uuid,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio_id, user_id)
);
CREATE INDEX portfolio_shares_by_user ON portfolio_shares (user_id);

CREATE TABLE portfolio_comments (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id  uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    author_id     uuid NOT NULL,
    parent_id     uuid REFERENCES portfolio_comments (id) ON DELETE CASCADE,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portfolio_comments_by_portfolio ON portfolio_comments (portfolio_id, created_at);

CREATE TABLE portfolio_activity (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portfolio_id  uuid NOT NULL REFERENCES portfolios (id) ON DELETE CASCADE,
    actor_id      uuid,
    action        text NOT NULL,
    before        jsonb,
    after         jsonb,
    ip            text,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portfolio_activity_by_portfolio ON portfolio_activity (portfolio_id, id);
