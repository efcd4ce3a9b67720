-- Provider presets (TradeStation) and the OAuth parameters they bring, as
-- one JSON object (crates/auth, `upstream_provider::ProviderOptions`):
-- `preset`, the `audience` sent on the authorization request, the
-- `userinfoEndpoint` and `revocationEndpoint`.
ALTER TABLE upstream_providers ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;

-- A user's tokens at an upstream provider (crates/auth, `upstream_tokens`):
-- the access and refresh tokens sealed together by Vault transit (or the
-- development transit key), bound to tenant, provider and user; never in
-- clear. Written when a login through the provider returns a refresh
-- token, rotated on refresh, deleted on disconnect. No index beyond the
-- primary key (issue 14: the per-tenant relation budget).
CREATE TABLE upstream_tokens (
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          text NOT NULL REFERENCES upstream_providers (name) ON DELETE CASCADE,
    sealed            text NOT NULL,
    access_expires_at timestamptz,
    scopes            text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);
