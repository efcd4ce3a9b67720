-- Portfolios and valuation cases are both documents: versioned, shared
-- within the tenant, commented, with an activity trail. One set of tables
-- serves both (crates/portfolio, module `documents`), keyed by the id of a
-- `documents` row that the portfolio or case shares its id with. Issue 14:
-- 18 relations fewer per tenant (the four valuation_case_* copies), 2 more
-- (`documents`, its key; `kind` is stored inline, so no TOAST pair).

CREATE TABLE documents (id uuid PRIMARY KEY);
ALTER TABLE documents
    ADD COLUMN kind text NOT NULL CHECK (kind IN ('portfolio', 'valuation_case')),
    ALTER COLUMN kind SET STORAGE PLAIN;
INSERT INTO documents (id, kind) SELECT id, 'portfolio' FROM portfolios;
INSERT INTO documents (id, kind) SELECT id, 'valuation_case' FROM valuation_cases;
ALTER TABLE portfolios ALTER COLUMN id DROP DEFAULT,
    ADD CONSTRAINT portfolios_document FOREIGN KEY (id) REFERENCES documents (id) ON DELETE CASCADE;
ALTER TABLE valuation_cases ALTER COLUMN id DROP DEFAULT,
    ADD CONSTRAINT valuation_cases_document FOREIGN KEY (id) REFERENCES documents (id) ON DELETE CASCADE;

-- Versions.
ALTER TABLE portfolio_versions RENAME TO document_versions;
ALTER TABLE document_versions RENAME COLUMN portfolio_id TO document_id;
ALTER INDEX portfolio_versions_pkey RENAME TO document_versions_pkey;
ALTER TABLE document_versions DROP CONSTRAINT portfolio_versions_portfolio_id_fkey,
    ADD CONSTRAINT document_versions_document_id_fkey
        FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE CASCADE;
INSERT INTO document_versions (document_id, version, snapshot, changed_by, change, created_at)
    SELECT case_id, version, snapshot, changed_by, change, created_at FROM valuation_case_versions;
ALTER TABLE valuation_case_analyses
    DROP CONSTRAINT valuation_case_analyses_case_id_version_fkey,
    ADD CONSTRAINT valuation_case_analyses_case_id_version_fkey
        FOREIGN KEY (case_id, version) REFERENCES document_versions (document_id, version) ON DELETE CASCADE;

-- Shares.
ALTER TABLE portfolio_shares RENAME TO document_shares;
ALTER TABLE document_shares RENAME COLUMN portfolio_id TO document_id;
ALTER INDEX portfolio_shares_pkey RENAME TO document_shares_pkey;
ALTER INDEX portfolio_shares_by_user RENAME TO document_shares_by_user;
ALTER TABLE document_shares RENAME CONSTRAINT portfolio_shares_access_check TO document_shares_access_check;
ALTER TABLE document_shares RENAME CONSTRAINT portfolio_shares_user_id_fkey TO document_shares_user_id_fkey;
ALTER TABLE document_shares DROP CONSTRAINT portfolio_shares_portfolio_id_fkey,
    ADD CONSTRAINT document_shares_document_id_fkey
        FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE CASCADE;
INSERT INTO document_shares (document_id, user_id, access, granted_by, expires_at, created_at)
    SELECT case_id, user_id, access, granted_by, expires_at, created_at FROM valuation_case_shares;

-- Comments (ids kept: replies keep their parents).
ALTER TABLE portfolio_comments RENAME TO document_comments;
ALTER TABLE document_comments RENAME COLUMN portfolio_id TO document_id;
ALTER INDEX portfolio_comments_pkey RENAME TO document_comments_pkey;
ALTER INDEX portfolio_comments_by_portfolio RENAME TO document_comments_by_document;
ALTER TABLE document_comments RENAME CONSTRAINT portfolio_comments_parent_id_fkey TO document_comments_parent_id_fkey;
ALTER TABLE document_comments DROP CONSTRAINT portfolio_comments_portfolio_id_fkey,
    ADD CONSTRAINT document_comments_document_id_fkey
        FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE CASCADE;
INSERT INTO document_comments (id, document_id, author_id, parent_id, body, created_at)
    SELECT id, case_id, author_id, parent_id, body, created_at FROM valuation_case_comments;

-- Activity (a case's entries get new ids, in their order).
ALTER TABLE portfolio_activity RENAME TO document_activity;
ALTER TABLE document_activity RENAME COLUMN portfolio_id TO document_id;
ALTER SEQUENCE portfolio_activity_id_seq RENAME TO document_activity_id_seq;
ALTER INDEX portfolio_activity_pkey RENAME TO document_activity_pkey;
ALTER INDEX portfolio_activity_by_portfolio RENAME TO document_activity_by_document;
ALTER TABLE document_activity DROP CONSTRAINT portfolio_activity_portfolio_id_fkey,
    ADD CONSTRAINT document_activity_document_id_fkey
        FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE CASCADE;
INSERT INTO document_activity (document_id, actor_id, action, before, after, ip, occurred_at)
    SELECT case_id, actor_id, action, before, after, ip, occurred_at FROM valuation_case_activity ORDER BY id;

DROP TABLE valuation_case_activity;
DROP TABLE valuation_case_comments;
DROP TABLE valuation_case_shares;
DROP TABLE valuation_case_versions;
