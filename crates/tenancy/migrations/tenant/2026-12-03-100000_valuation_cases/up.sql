-- EPV valuation cases (crates/portfolio, module `cases`): a case per
-- company, every change a new version with its valuation, sharing within
-- the tenant, comments, analysis results attached to a version, and the
-- activity trail. Unqualified, uuid/identity keys only, no references
-- outside the tenant schema.

CREATE TABLE valuation_cases (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id      uuid NOT NULL REFERENCES users (id),
    ticker        text NOT NULL,
    name          text NOT NULL,
    currency      text NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    inputs        jsonb NOT NULL,
    valuation     jsonb NOT NULL,
    -- The browser app's id of an imported case (per owner): importing the
    -- same export again creates nothing.
    import_key    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    UNIQUE (owner_id, import_key)
);

CREATE TABLE valuation_case_versions (
    case_id       uuid NOT NULL REFERENCES valuation_cases (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    snapshot      jsonb NOT NULL,
    changed_by    uuid,
    change        text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, version)
);

CREATE TABLE valuation_case_shares (
    case_id       uuid NOT NULL REFERENCES valuation_cases (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access        text NOT NULL CHECK (access IN ('view', 'comment', 'edit', 'admin')),
    granted_by    uuid,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, user_id)
);

CREATE TABLE valuation_case_comments (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    case_id       uuid NOT NULL REFERENCES valuation_cases (id) ON DELETE CASCADE,
    author_id     uuid NOT NULL,
    parent_id     uuid REFERENCES valuation_case_comments (id) ON DELETE CASCADE,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE valuation_case_analyses (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    case_id       uuid NOT NULL,
    version       integer NOT NULL,
    source        text NOT NULL,
    document      jsonb NOT NULL,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (case_id, version) REFERENCES valuation_case_versions (case_id, version) ON DELETE CASCADE
);

CREATE TABLE valuation_case_activity (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       uuid NOT NULL REFERENCES valuation_cases (id) ON DELETE CASCADE,
    actor_id      uuid,
    action        text NOT NULL,
    before        jsonb,
    after         jsonb,
    ip            text,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX valuation_case_shares_by_user ON valuation_case_shares (user_id);
CREATE INDEX valuation_case_comments_by_case ON valuation_case_comments (case_id, created_at);
CREATE INDEX valuation_case_analyses_by_case ON valuation_case_analyses (case_id, version);
CREATE INDEX valuation_case_activity_by_case ON valuation_case_activity (case_id, id);
