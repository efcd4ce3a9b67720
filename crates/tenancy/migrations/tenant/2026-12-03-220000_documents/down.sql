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
CREATE INDEX valuation_case_activity_by_case ON valuation_case_activity (case_id, id);

INSERT INTO valuation_case_versions SELECT document_id, version, snapshot, changed_by, change, created_at
    FROM document_versions WHERE document_id IN (SELECT id FROM valuation_cases);
INSERT INTO valuation_case_shares SELECT document_id, user_id, access, granted_by, expires_at, created_at
    FROM document_shares WHERE document_id IN (SELECT id FROM valuation_cases);
INSERT INTO valuation_case_comments SELECT id, document_id, author_id, parent_id, body, created_at
    FROM document_comments WHERE document_id IN (SELECT id FROM valuation_cases);
INSERT INTO valuation_case_activity (case_id, actor_id, action, before, after, ip, occurred_at)
    SELECT document_id, actor_id, action, before, after, ip, occurred_at
    FROM document_activity WHERE document_id IN (SELECT id FROM valuation_cases) ORDER BY id;
ALTER TABLE valuation_case_analyses
    DROP CONSTRAINT valuation_case_analyses_case_id_version_fkey,
    ADD CONSTRAINT valuation_case_analyses_case_id_version_fkey
        FOREIGN KEY (case_id, version) REFERENCES valuation_case_versions (case_id, version) ON DELETE CASCADE;
DELETE FROM document_versions WHERE document_id IN (SELECT id FROM valuation_cases);
DELETE FROM document_shares WHERE document_id IN (SELECT id FROM valuation_cases);
DELETE FROM document_comments WHERE document_id IN (SELECT id FROM valuation_cases);
DELETE FROM document_activity WHERE document_id IN (SELECT id FROM valuation_cases);

ALTER TABLE document_activity DROP CONSTRAINT document_activity_document_id_fkey;
ALTER TABLE document_activity RENAME TO portfolio_activity;
ALTER TABLE portfolio_activity RENAME COLUMN document_id TO portfolio_id;
ALTER SEQUENCE document_activity_id_seq RENAME TO portfolio_activity_id_seq;
ALTER INDEX document_activity_pkey RENAME TO portfolio_activity_pkey;
ALTER INDEX document_activity_by_document RENAME TO portfolio_activity_by_portfolio;
ALTER TABLE portfolio_activity ADD CONSTRAINT portfolio_activity_portfolio_id_fkey
    FOREIGN KEY (portfolio_id) REFERENCES portfolios (id) ON DELETE CASCADE;

ALTER TABLE document_comments DROP CONSTRAINT document_comments_document_id_fkey;
ALTER TABLE document_comments RENAME TO portfolio_comments;
ALTER TABLE portfolio_comments RENAME COLUMN document_id TO portfolio_id;
ALTER INDEX document_comments_pkey RENAME TO portfolio_comments_pkey;
ALTER INDEX document_comments_by_document RENAME TO portfolio_comments_by_portfolio;
ALTER TABLE portfolio_comments RENAME CONSTRAINT document_comments_parent_id_fkey TO portfolio_comments_parent_id_fkey;
ALTER TABLE portfolio_comments ADD CONSTRAINT portfolio_comments_portfolio_id_fkey
    FOREIGN KEY (portfolio_id) REFERENCES portfolios (id) ON DELETE CASCADE;

ALTER TABLE document_shares DROP CONSTRAINT document_shares_document_id_fkey;
ALTER TABLE document_shares RENAME TO portfolio_shares;
ALTER TABLE portfolio_shares RENAME COLUMN document_id TO portfolio_id;
ALTER INDEX document_shares_pkey RENAME TO portfolio_shares_pkey;
ALTER INDEX document_shares_by_user RENAME TO portfolio_shares_by_user;
ALTER TABLE portfolio_shares RENAME CONSTRAINT document_shares_access_check TO portfolio_shares_access_check;
ALTER TABLE portfolio_shares RENAME CONSTRAINT document_shares_user_id_fkey TO portfolio_shares_user_id_fkey;
ALTER TABLE portfolio_shares ADD CONSTRAINT portfolio_shares_portfolio_id_fkey
    FOREIGN KEY (portfolio_id) REFERENCES portfolios (id) ON DELETE CASCADE;

ALTER TABLE document_versions DROP CONSTRAINT document_versions_document_id_fkey;
ALTER TABLE document_versions RENAME TO portfolio_versions;
ALTER TABLE portfolio_versions RENAME COLUMN document_id TO portfolio_id;
ALTER INDEX document_versions_pkey RENAME TO portfolio_versions_pkey;
ALTER TABLE portfolio_versions ADD CONSTRAINT portfolio_versions_portfolio_id_fkey
    FOREIGN KEY (portfolio_id) REFERENCES portfolios (id) ON DELETE CASCADE;

ALTER TABLE portfolios DROP CONSTRAINT portfolios_document, ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE valuation_cases DROP CONSTRAINT valuation_cases_document, ALTER COLUMN id SET DEFAULT gen_random_uuid();
DROP TABLE documents;
