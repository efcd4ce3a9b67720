-- Upstream OpenID providers of the tenant (crates/auth, `upstream`). Client
-- secrets are never stored here: `has_client_secret` says whether one is
-- kept in the secret store (Vault, or the dev store). The three endpoints
-- are all set (discovery skipped) or all null. One table, no index beyond
-- the primary key (issue 14: the per-tenant relation budget).
CREATE TABLE upstream_providers (
    name                   text PRIMARY KEY,
    display_name           text NOT NULL,
    issuer                 text NOT NULL,
    client_id              text NOT NULL,
    has_client_secret      boolean NOT NULL DEFAULT false,
    redirect_uri           text NOT NULL,
    scopes                 text[] NOT NULL DEFAULT '{}',
    link_verified_email    boolean NOT NULL DEFAULT false,
    new_user_role          text NOT NULL,
    authorization_endpoint text,
    token_endpoint         text,
    jwks_uri               text,
    enabled                boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
