-- Invitations (crates/auth): the way a new user or an added member gets in.
-- Single use, expiring; only the SHA-256 of the link's secret is stored.
-- Re-sending replaces the hash and the expiry (the old link stops working).
CREATE TABLE invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL,
    secret_hash bytea NOT NULL,
    invited_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX invitations_by_user ON invitations (user_id);
