DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_append_only();
ALTER TABLE audit_log DROP COLUMN tenant_id;
DROP TABLE external_identities;
DROP TABLE api_keys;
DROP TABLE access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE oauth_clients;
DROP TABLE login_attempts;
DROP TABLE login_challenges;
DROP TABLE mfa_backup_codes;
DROP INDEX sessions_expiry;
ALTER TABLE sessions DROP COLUMN secret_hash, DROP COLUMN auth_time, DROP COLUMN amr;
ALTER TABLE users DROP COLUMN failed_password_count, DROP COLUMN failed_totp_count,
    DROP COLUMN locked_until, DROP COLUMN password_changed_at, DROP COLUMN totp_secret_sealed,
    DROP COLUMN totp_enabled, DROP COLUMN totp_last_step;
