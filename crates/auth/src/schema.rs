//! diesel definitions of the tenant tables this crate owns (from
//! `migrations/tenant/*_init` and `*_auth`). Unqualified by schema: the
//! tenant pool's `search_path` picks the tenant. The audit log's tree
//! (`platform.audit_leaves`, `platform.audit_tree_heads`) and the
//! access-token revocations (`platform.token_revocations`) live in the
//! platform schema, named with it. Other crates reach these
//! rows through this crate's services, never through these tables.
#![allow(missing_docs)]

use diesel::sql_types::Text;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `lower()`: e-mail addresses are unique and looked up lower-cased.
    fn lower(x: Text) -> Text;
}

diesel::table! {
    /// A tenant's roles and what each may do (permission scopes; migration
    /// `*_role_permissions` seeds the built-in ones).
    roles (name) {
        name -> Text,
        description -> Text,
        permissions -> Array<Text>,
    }
}

// Two columns are left out to stay within diesel's 16-column tables:
// `preferences` (jsonb, the product's settings, read with raw SQL) and
// `leaderboard_opt_out` (rampart-members' flag, in `user_flags` below).
diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        status -> Text,
        email_verified -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        failed_password_count -> Integer,
        failed_totp_count -> Integer,
        locked_until -> Nullable<Timestamptz>,
        password_changed_at -> Nullable<Timestamptz>,
        totp_secret_sealed -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// More columns of `users`, beyond diesel's 16 (the same table): the
    /// flag rampart-members reads and sets through [`crate::directory`].
    #[sql_name = "users"]
    user_flags (id) {
        id -> Uuid,
        leaderboard_opt_out -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        device -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        secret_hash -> Nullable<Bytea>,
        auth_time -> Timestamptz,
        amr -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        occurred_at -> Timestamptz,
        user_id -> Nullable<Uuid>,
        actor -> Nullable<Text>,
        action -> Text,
        result -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Jsonb,
        prev_hash -> Nullable<Bytea>,
        row_hash -> Nullable<Bytea>,
        tenant_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    mfa_backup_codes (id) {
        id -> Uuid,
        user_id -> Uuid,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    login_challenges (id) {
        id -> Uuid,
        user_id -> Uuid,
        secret_hash -> Bytea,
        device -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        kind -> Text,
        account -> Text,
        ip -> Text,
        success -> Bool,
        attempted_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Bytea>,
        auth_method -> Text,
        redirect_uris -> Array<Text>,
        grant_types -> Array<Text>,
        allowed_scopes -> Array<Text>,
        signing_alg -> Text,
        service_role -> Text,
        created_at -> Timestamptz,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Bytea,
        client_id -> Text,
        user_id -> Uuid,
        session_id -> Nullable<Uuid>,
        redirect_uri -> Text,
        scope -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        auth_time -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        family_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        token_hash -> Bytea,
        family_id -> Uuid,
        client_id -> Text,
        user_id -> Uuid,
        session_id -> Nullable<Uuid>,
        scope -> Text,
        auth_code_hash -> Nullable<Bytea>,
        auth_time -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        family_expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        successor_id -> Nullable<Uuid>,
        successor_sealed -> Nullable<Text>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        prefix -> Text,
        key_hash -> Bytea,
        user_id -> Uuid,
        name -> Text,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    external_identities (provider, subject) {
        provider -> Text,
        subject -> Text,
        user_id -> Uuid,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        user_id -> Uuid,
        email -> Text,
        role -> Text,
        secret_hash -> Bytea,
        invited_by -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Upstream OpenID providers (migration `*_upstream_providers`).
    upstream_providers (name) {
        name -> Text,
        display_name -> Text,
        issuer -> Text,
        client_id -> Text,
        has_client_secret -> Bool,
        redirect_uri -> Text,
        scopes -> Array<Text>,
        link_verified_email -> Bool,
        new_user_role -> Text,
        authorization_endpoint -> Nullable<Text>,
        token_endpoint -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        options -> Jsonb,
    }
}

diesel::table! {
    /// Users' sealed tokens at upstream providers (migration `*_upstream_tokens`).
    upstream_tokens (user_id, provider) {
        user_id -> Uuid,
        provider -> Text,
        sealed -> Text,
        access_expires_at -> Nullable<Timestamptz>,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// The sealed leaves of every tenant's audit log (platform schema,
    /// `migrations/platform/*_audit_log_tree`; written by the sealer only).
    platform.audit_leaves (tenant_id, leaf_index) {
        tenant_id -> Uuid,
        leaf_index -> Int8,
        row_id -> Int8,
        leaf_hash -> Bytea,
    }
}

diesel::table! {
    /// Access-token revocations of every tenant (platform schema), written
    /// through `platform_tenant_api.revoke_access_tokens`.
    platform.token_revocations (id) {
        id -> Int8,
        xact -> Int8,
        tenant_id -> Uuid,
        kind -> Text,
        subject -> Text,
        revoked_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    /// Signed tree heads of every tenant's audit log (platform schema).
    platform.audit_tree_heads (id) {
        id -> Int8,
        tenant_id -> Uuid,
        tree_size -> Int8,
        root_hash -> Bytea,
        last_row_id -> Int8,
        frontier -> Bytea,
        signed_at -> Timestamptz,
        kid -> Text,
        signature -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(invitations -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(external_identities -> users (user_id));
diesel::joinable!(upstream_tokens -> users (user_id));
diesel::joinable!(upstream_tokens -> upstream_providers (provider));
diesel::joinable!(mfa_backup_codes -> users (user_id));
diesel::joinable!(login_challenges -> users (user_id));
diesel::joinable!(users -> roles (role));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    audit_log,
    mfa_backup_codes,
    login_challenges,
    login_attempts,
    oauth_clients,
    authorization_codes,
    refresh_tokens,
    api_keys,
    external_identities,
    invitations,
    upstream_providers,
    roles,
    upstream_tokens,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables whose `table!` lists every column (`users` leaves two out).
    #[tokio::test]
    async fn tables_match_the_migrations() {
        rampart_testkit::assert_tenant_schema!(
            rampart_tenancy,
            [
                upstream_providers,
                upstream_tokens,
                external_identities,
                invitations,
                roles
            ],
            [audit_leaves, audit_tree_heads, token_revocations]
        );
    }
}
