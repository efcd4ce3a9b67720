-- E-mail notifications (crates/notify): single-use e-mail tokens (address
-- verification, password reset; only their SHA-256 is stored), the devices
-- each user has logged in from, price alerts, and a log of sent mail.
-- Unqualified, identity/uuid keys only, no references outside the tenant schema.

CREATE TABLE email_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    secret_hash bytea NOT NULL,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);

-- A device is the SHA-256 of the user agent (digits folded, so browser
-- updates are the same device) and the client's network prefix.
CREATE TABLE known_devices (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   bytea NOT NULL,
    label         text NOT NULL DEFAULT '',
    ip_prefix     text NOT NULL DEFAULT '',
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT known_devices_user_fingerprint UNIQUE (user_id, fingerprint)
);

-- Sessions already looked at by the new-device check (once across replicas).
CREATE TABLE login_device_checks (
    session_id  uuid PRIMARY KEY,
    checked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_device_checks_time ON login_device_checks (checked_at);

CREATE TABLE price_alerts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    symbol       text NOT NULL,
    direction    text NOT NULL CHECK (direction IN ('above', 'below')),
    threshold    double precision NOT NULL CHECK (threshold > 0),
    note         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    triggered_at timestamptz,
    triggered_price double precision
);
CREATE INDEX price_alerts_by_user ON price_alerts (user_id, created_at);
CREATE INDEX price_alerts_pending ON price_alerts (symbol) WHERE triggered_at IS NULL;

CREATE TABLE sent_emails (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    kind        text NOT NULL,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    error       text
);
CREATE INDEX sent_emails_by_user ON sent_emails (user_id, sent_at);
