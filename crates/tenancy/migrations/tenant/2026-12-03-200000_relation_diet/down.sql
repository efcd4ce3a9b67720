CREATE TABLE instruments (
    symbol      text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    asset_class text NOT NULL DEFAULT 'equity',
    currency    text NOT NULL DEFAULT 'USD',
    sector      text
);

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

ALTER TABLE access_tokens
    ALTER COLUMN jti SET STORAGE EXTENDED,
    ALTER COLUMN client_id SET STORAGE EXTENDED,
    ALTER COLUMN auth_code_hash SET STORAGE EXTENDED;

ALTER TABLE refresh_tokens
    ALTER COLUMN token_hash SET STORAGE EXTENDED,
    ALTER COLUMN client_id SET STORAGE EXTENDED,
    ALTER COLUMN scope SET STORAGE EXTENDED,
    ALTER COLUMN auth_code_hash SET STORAGE EXTENDED,
    ALTER COLUMN successor_sealed SET STORAGE EXTENDED;

ALTER TABLE sessions
    ALTER COLUMN device SET STORAGE EXTENDED,
    ALTER COLUMN ip SET STORAGE EXTENDED,
    ALTER COLUMN user_agent SET STORAGE EXTENDED,
    ALTER COLUMN secret_hash SET STORAGE EXTENDED,
    ALTER COLUMN amr SET STORAGE EXTENDED;

ALTER TABLE login_challenges
    ALTER COLUMN secret_hash SET STORAGE EXTENDED,
    ALTER COLUMN device SET STORAGE EXTENDED,
    ALTER COLUMN ip SET STORAGE EXTENDED,
    ALTER COLUMN user_agent SET STORAGE EXTENDED;

ALTER TABLE login_attempts
    ALTER COLUMN kind SET STORAGE EXTENDED,
    ALTER COLUMN account SET STORAGE EXTENDED,
    ALTER COLUMN ip SET STORAGE EXTENDED;

ALTER TABLE mfa_backup_codes
    ALTER COLUMN code_hash SET STORAGE EXTENDED;

ALTER TABLE email_tokens
    ALTER COLUMN purpose SET STORAGE EXTENDED,
    ALTER COLUMN secret_hash SET STORAGE EXTENDED,
    ALTER COLUMN email SET STORAGE EXTENDED;

ALTER TABLE invitations
    ALTER COLUMN email SET STORAGE EXTENDED,
    ALTER COLUMN role SET STORAGE EXTENDED,
    ALTER COLUMN secret_hash SET STORAGE EXTENDED,
    ALTER COLUMN invited_by SET STORAGE EXTENDED;

ALTER TABLE api_keys
    ALTER COLUMN prefix SET STORAGE EXTENDED,
    ALTER COLUMN key_hash SET STORAGE EXTENDED,
    ALTER COLUMN name SET STORAGE EXTENDED,
    ALTER COLUMN scopes SET STORAGE EXTENDED;

ALTER TABLE broker_accounts
    ALTER COLUMN broker SET STORAGE EXTENDED,
    ALTER COLUMN sealed_credentials SET STORAGE EXTENDED,
    ALTER COLUMN attached_by SET STORAGE EXTENDED;

ALTER TABLE portfolio_shares
    ALTER COLUMN access SET STORAGE EXTENDED;

ALTER TABLE valuation_case_shares
    ALTER COLUMN access SET STORAGE EXTENDED;

ALTER TABLE price_alerts
    ALTER COLUMN symbol SET STORAGE EXTENDED,
    ALTER COLUMN direction SET STORAGE EXTENDED,
    ALTER COLUMN note SET STORAGE EXTENDED;
