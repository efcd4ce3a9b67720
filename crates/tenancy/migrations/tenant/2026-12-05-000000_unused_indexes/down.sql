CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);
CREATE INDEX login_device_checks_time ON login_device_checks (checked_at);
CREATE INDEX login_challenges_expiry ON login_challenges (expires_at);
