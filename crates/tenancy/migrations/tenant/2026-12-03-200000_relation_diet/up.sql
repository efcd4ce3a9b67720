-- Issue 14, the per-tenant relation budget: every relation is catalog rows
-- and a file, times every tenant on the server.
--
-- 1. The tenant copies of `instruments` and `prices_daily` go: nothing reads
--    or writes them; market data is shared in the `market` schema
--    (crates/market).
-- 2. Tables whose every variable-length value is small and bounded by the
--    code that writes it (hashes, ids, scopes, e-mail addresses of at most
--    254 bytes, a User-Agent kept to 512 characters, names and notes of at
--    most 200 characters) store it inline (STORAGE PLAIN), so they need no
--    TOAST table and TOAST index: two relations fewer each. CLUSTER rewrites
--    the table, which drops the TOAST table it no longer needs (allowed in a
--    transaction when a table is named); SET WITHOUT CLUSTER clears the mark
--    so the schema stays identical to one built from the baseline.
DROP TABLE instruments;
DROP TABLE prices_daily;

ALTER TABLE access_tokens
    ALTER COLUMN jti SET STORAGE PLAIN,
    ALTER COLUMN client_id SET STORAGE PLAIN,
    ALTER COLUMN auth_code_hash SET STORAGE PLAIN;
CLUSTER access_tokens USING access_tokens_pkey;
ALTER TABLE access_tokens SET WITHOUT CLUSTER;

ALTER TABLE refresh_tokens
    ALTER COLUMN token_hash SET STORAGE PLAIN,
    ALTER COLUMN client_id SET STORAGE PLAIN,
    ALTER COLUMN scope SET STORAGE PLAIN,
    ALTER COLUMN auth_code_hash SET STORAGE PLAIN,
    ALTER COLUMN successor_sealed SET STORAGE PLAIN;
CLUSTER refresh_tokens USING refresh_tokens_pkey;
ALTER TABLE refresh_tokens SET WITHOUT CLUSTER;

ALTER TABLE sessions
    ALTER COLUMN device SET STORAGE PLAIN,
    ALTER COLUMN ip SET STORAGE PLAIN,
    ALTER COLUMN user_agent SET STORAGE PLAIN,
    ALTER COLUMN secret_hash SET STORAGE PLAIN,
    ALTER COLUMN amr SET STORAGE PLAIN;
CLUSTER sessions USING sessions_pkey;
ALTER TABLE sessions SET WITHOUT CLUSTER;

ALTER TABLE login_challenges
    ALTER COLUMN secret_hash SET STORAGE PLAIN,
    ALTER COLUMN device SET STORAGE PLAIN,
    ALTER COLUMN ip SET STORAGE PLAIN,
    ALTER COLUMN user_agent SET STORAGE PLAIN;
CLUSTER login_challenges USING login_challenges_pkey;
ALTER TABLE login_challenges SET WITHOUT CLUSTER;

ALTER TABLE login_attempts
    ALTER COLUMN kind SET STORAGE PLAIN,
    ALTER COLUMN account SET STORAGE PLAIN,
    ALTER COLUMN ip SET STORAGE PLAIN;
CLUSTER login_attempts USING login_attempts_pkey;
ALTER TABLE login_attempts SET WITHOUT CLUSTER;

ALTER TABLE mfa_backup_codes
    ALTER COLUMN code_hash SET STORAGE PLAIN;
CLUSTER mfa_backup_codes USING mfa_backup_codes_pkey;
ALTER TABLE mfa_backup_codes SET WITHOUT CLUSTER;

ALTER TABLE email_tokens
    ALTER COLUMN purpose SET STORAGE PLAIN,
    ALTER COLUMN secret_hash SET STORAGE PLAIN,
    ALTER COLUMN email SET STORAGE PLAIN;
CLUSTER email_tokens USING email_tokens_pkey;
ALTER TABLE email_tokens SET WITHOUT CLUSTER;

ALTER TABLE invitations
    ALTER COLUMN email SET STORAGE PLAIN,
    ALTER COLUMN role SET STORAGE PLAIN,
    ALTER COLUMN secret_hash SET STORAGE PLAIN,
    ALTER COLUMN invited_by SET STORAGE PLAIN;
CLUSTER invitations USING invitations_pkey;
ALTER TABLE invitations SET WITHOUT CLUSTER;

ALTER TABLE api_keys
    ALTER COLUMN prefix SET STORAGE PLAIN,
    ALTER COLUMN key_hash SET STORAGE PLAIN,
    ALTER COLUMN name SET STORAGE PLAIN,
    ALTER COLUMN scopes SET STORAGE PLAIN;
CLUSTER api_keys USING api_keys_pkey;
ALTER TABLE api_keys SET WITHOUT CLUSTER;

ALTER TABLE broker_accounts
    ALTER COLUMN broker SET STORAGE PLAIN,
    ALTER COLUMN sealed_credentials SET STORAGE PLAIN,
    ALTER COLUMN attached_by SET STORAGE PLAIN;
CLUSTER broker_accounts USING broker_accounts_pkey;
ALTER TABLE broker_accounts SET WITHOUT CLUSTER;

ALTER TABLE portfolio_shares
    ALTER COLUMN access SET STORAGE PLAIN;
CLUSTER portfolio_shares USING portfolio_shares_pkey;
ALTER TABLE portfolio_shares SET WITHOUT CLUSTER;

ALTER TABLE valuation_case_shares
    ALTER COLUMN access SET STORAGE PLAIN;
CLUSTER valuation_case_shares USING valuation_case_shares_pkey;
ALTER TABLE valuation_case_shares SET WITHOUT CLUSTER;

ALTER TABLE price_alerts
    ALTER COLUMN symbol SET STORAGE PLAIN,
    ALTER COLUMN direction SET STORAGE PLAIN,
    ALTER COLUMN note SET STORAGE PLAIN;
CLUSTER price_alerts USING price_alerts_pkey;
ALTER TABLE price_alerts SET WITHOUT CLUSTER;
