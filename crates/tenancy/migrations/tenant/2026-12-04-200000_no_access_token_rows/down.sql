ALTER TABLE authorization_codes DROP COLUMN family_id;
CREATE TABLE access_tokens (
    jti            text PRIMARY KEY STORAGE PLAIN,
    client_id      text NOT NULL STORAGE PLAIN,
    user_id        uuid,
    family_id      uuid,
    session_id     uuid,
    auth_code_hash bytea STORAGE PLAIN,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX access_tokens_code ON access_tokens (auth_code_hash);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
