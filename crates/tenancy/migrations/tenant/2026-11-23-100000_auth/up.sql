-- Auth (crates/auth): credentials state, MFA, brute-force counters, OAuth
-- clients, codes, refresh token families, API keys, external identities and
-- the hash-chained audit log. Unqualified, identity/uuid keys only, no
-- references outside the tenant schema.

ALTER TABLE users
    ADD COLUMN failed_password_count integer NOT NULL DEFAULT 0,
    ADD COLUMN failed_totp_count     integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until          timestamptz,
    ADD COLUMN password_changed_at   timestamptz,
    ADD COLUMN totp_secret_sealed    text,
    ADD COLUMN totp_enabled          boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step        bigint;

ALTER TABLE sessions
    ADD COLUMN secret_hash bytea,
    ADD COLUMN auth_time   timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN amr         text NOT NULL DEFAULT 'pwd';
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE mfa_backup_codes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_backup_codes_by_user ON mfa_backup_codes (user_id);

-- A password was right and a second factor is pending.
CREATE TABLE login_challenges (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash bytea NOT NULL,
    device      text NOT NULL DEFAULT '',
    ip          text,
    user_agent  text,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX login_challenges_expiry ON login_challenges (expires_at);

CREATE TABLE login_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('password', 'totp')),
    account     text NOT NULL,
    ip          text NOT NULL,
    success     boolean NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_account_ip ON login_attempts (kind, account, ip, attempted_at);
CREATE INDEX login_attempts_ip ON login_attempts (kind, ip, attempted_at);
CREATE INDEX login_attempts_time ON login_attempts (attempted_at);

CREATE TABLE oauth_clients (
    client_id       text PRIMARY KEY,
    name            text NOT NULL,
    secret_hash     bytea,
    auth_method     text NOT NULL CHECK (auth_method IN ('none', 'client_secret_basic', 'client_secret_post')),
    redirect_uris   text[] NOT NULL DEFAULT '{}',
    grant_types     text[] NOT NULL DEFAULT '{}',
    allowed_scopes  text[] NOT NULL DEFAULT '{}',
    signing_alg     text NOT NULL DEFAULT 'ES256' CHECK (signing_alg IN ('ES256', 'RS256')),
    service_role    text NOT NULL DEFAULT 'api_user',
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE authorization_codes (
    code_hash      bytea PRIMARY KEY,
    client_id      text NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     uuid,
    redirect_uri   text NOT NULL,
    scope          text NOT NULL,
    code_challenge text NOT NULL,
    nonce          text,
    auth_time      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash        bytea NOT NULL UNIQUE,
    family_id         uuid NOT NULL,
    client_id         text NOT NULL,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id        uuid,
    scope             text NOT NULL,
    auth_code_hash    bytea,
    auth_time         timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    family_expires_at timestamptz NOT NULL,
    rotated_at        timestamptz,
    successor_id      uuid,
    -- The successor's token, sealed, so a retry within the grace window gets
    -- the same one back; erased when the grace window ends.
    successor_sealed  text,
    revoked_at        timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_code ON refresh_tokens (auth_code_hash);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Access tokens are stateless JWTs; this records their ids so revocation,
-- code replay and family revocation can reach them through introspection.
CREATE TABLE access_tokens (
    jti            text PRIMARY KEY,
    client_id      text NOT NULL,
    user_id        uuid,
    family_id      uuid,
    session_id     uuid,
    auth_code_hash bytea,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX access_tokens_code ON access_tokens (auth_code_hash);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix       text NOT NULL UNIQUE,
    key_hash     bytea NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE external_identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);

ALTER TABLE audit_log ADD COLUMN tenant_id uuid;

-- Append-only: the application never updates or deletes audit rows; the
-- hash chain (prev_hash/row_hash) makes tampering by other means detectable.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
