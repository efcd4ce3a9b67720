//! The one typed configuration of the auth services.

use std::time::Duration;

use serde::Deserialize;

use crate::error::AuthError;

/// Every tunable of the auth crate, with secure defaults.
///
/// Durations are whole seconds (`*_secs`). Unknown fields are refused so a
/// typo in a config file is an error, not a silently ignored setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Public base URL of the server, without a trailing slash; a tenant's
    /// issuer is `{public_base_url}/t/{slug}`.
    pub public_base_url: String,
    /// Audience put into access tokens and required when verifying them.
    pub access_token_audience: String,
    /// Access token lifetime (RFC 9068 JWT).
    pub access_token_ttl_secs: u64,
    /// ID token lifetime.
    pub id_token_ttl_secs: u64,
    /// Refresh token idle lifetime: each rotated token lives this long.
    pub refresh_token_ttl_secs: u64,
    /// Refresh family absolute lifetime, counted from the first login.
    pub refresh_family_ttl_secs: u64,
    /// A refresh retried within this window gets the same successor back,
    /// once and only while that successor is unused. `0` (the default, as
    /// Okta's and Auth0's rotation defaults) turns it off: any reuse of a
    /// rotated refresh token revokes its family.
    pub refresh_grace_secs: u64,
    /// How recent a sign-in must be (the token's `auth_time`) for account
    /// changes that need no password: second factor, API keys, signing
    /// out other sessions. Older: sign in again (`prompt=login`/`max_age`).
    pub reauth_max_age_secs: u64,
    /// Authorization code lifetime.
    pub authorization_code_ttl_secs: u64,
    /// Tolerated clock skew when checking `exp`/`iat`.
    pub clock_skew_secs: u64,
    /// How long an active signing/encryption key signs before rotation.
    pub key_rotation_secs: u64,
    /// How long the next key is published in the JWKS before it signs.
    pub key_publish_lead_secs: u64,
    /// Login session lifetime.
    pub session_ttl_secs: u64,
    /// Failed password attempts (per account, every source) within the
    /// sliding window [`Self::lockout_secs`] that lock the account for
    /// sources it has not logged in from (TOTP: consecutive failures).
    pub lockout_threshold: u32,
    /// The lockout's sliding window: older failures do not count, so a
    /// lockout ends this long after the failures that caused it.
    pub lockout_secs: u64,
    /// Attempts allowed per account+IP within [`Self::rate_limit_window_secs`].
    pub rate_limit_attempts: u32,
    /// Failed password attempts allowed per source address across all
    /// accounts within [`Self::rate_limit_window_secs`] (password spraying).
    pub source_attempts: u32,
    /// Password attempts of one account hashed at the same time in one
    /// process; more parallel attempts are refused (429).
    pub account_hash_concurrency: usize,
    /// The rate limit window.
    pub rate_limit_window_secs: u64,
    /// First progressive delay after a failure, in milliseconds (doubles per failure).
    pub backoff_base_ms: u64,
    /// Cap of the progressive delay, in milliseconds.
    pub backoff_cap_ms: u64,
    /// Argon2id memory cost in KiB (OWASP: 19 MiB).
    pub argon2_m_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_t: u32,
    /// Argon2id parallelism (OWASP: 1).
    pub argon2_p: u32,
    /// Concurrent Argon2id computations; `0` means the number of cores.
    pub hash_concurrency: usize,
    /// Entries in the cache of verified access tokens.
    pub verified_token_cache_entries: u64,
    /// How old this replica's view of the access-token revocation feed
    /// (`platform.token_revocations`, one query for every tenant) may be
    /// when a token is checked. Revocations made through this process take
    /// effect at once; ones made by another replica within this many
    /// seconds. `0` reads the feed on every check.
    pub revocation_check_secs: u64,
    /// How old this replica's view of the tenancy change feed
    /// (`platform.tenant_changes`, one query for every tenant) may be when a
    /// role's cached permissions are used; a role is read again only after
    /// a change of the tenant's roles was announced. Changes made through
    /// this process take effect at once; ones made by another replica within
    /// this many seconds. `0` reads the role on every request.
    pub role_cache_secs: u64,
    /// Issuer name shown in authenticator apps.
    pub totp_issuer: String,
    /// How often the server seals every tenant's new audit rows into its
    /// Merkle tree and signs a tree head (one replica at a time); `0`
    /// turns the job off. Rows are provable and tamper-evident once sealed.
    pub audit_seal_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            access_token_audience: "rampart".to_owned(),
            access_token_ttl_secs: 15 * 60,
            id_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            refresh_family_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 0,
            reauth_max_age_secs: 15 * 60,
            authorization_code_ttl_secs: 60,
            clock_skew_secs: 60,
            key_rotation_secs: 30 * 24 * 3600,
            key_publish_lead_secs: 3600,
            session_ttl_secs: 7 * 24 * 3600,
            lockout_threshold: 10,
            lockout_secs: 15 * 60,
            rate_limit_attempts: 5,
            source_attempts: 30,
            account_hash_concurrency: 2,
            rate_limit_window_secs: 15 * 60,
            backoff_base_ms: 100,
            backoff_cap_ms: 3_000,
            argon2_m_kib: 19 * 1024,
            argon2_t: 2,
            argon2_p: 1,
            hash_concurrency: 0,
            verified_token_cache_entries: 100_000,
            revocation_check_secs: 5,
            role_cache_secs: 5,
            totp_issuer: "Rampart".to_owned(),
            audit_seal_secs: 10,
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl AuthConfig {
    /// Checks the values for consistency.
    pub fn validate(&self) -> Result<(), AuthError> {
        let url = url::Url::parse(&self.public_base_url)
            .map_err(|e| AuthError::Config(format!("public_base_url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || self.public_base_url.ends_with('/') {
            return Err(AuthError::Config(
                "public_base_url must be http(s) without a trailing slash".into(),
            ));
        }
        if self.access_token_ttl_secs == 0 || self.authorization_code_ttl_secs == 0 {
            return Err(AuthError::Config("token lifetimes must be positive".into()));
        }
        if self.key_publish_lead_secs >= self.key_rotation_secs {
            return Err(AuthError::Config(
                "key_publish_lead_secs must be shorter than key_rotation_secs".into(),
            ));
        }
        if self.lockout_threshold == 0
            || self.rate_limit_attempts == 0
            || self.source_attempts == 0
            || self.account_hash_concurrency == 0
        {
            return Err(AuthError::Config("limits must be positive".into()));
        }
        argon2::Params::new(self.argon2_m_kib, self.argon2_t, self.argon2_p, None)
            .map_err(|e| AuthError::Config(format!("argon2: {e}")))?;
        Ok(())
    }

    /// The issuer URL of a tenant.
    pub fn issuer(&self, tenant_slug: &str) -> String {
        format!("{}/t/{tenant_slug}", self.public_base_url)
    }

    /// Access token lifetime.
    pub fn access_token_ttl(&self) -> Duration {
        secs(self.access_token_ttl_secs)
    }
    /// ID token lifetime.
    pub fn id_token_ttl(&self) -> Duration {
        secs(self.id_token_ttl_secs)
    }
    /// Clock skew.
    pub fn clock_skew(&self) -> Duration {
        secs(self.clock_skew_secs)
    }
    /// The longest lifetime of anything we sign (keys must verify that long
    /// after they stop signing, plus skew).
    pub fn max_signed_lifetime(&self) -> Duration {
        secs(self.access_token_ttl_secs.max(self.id_token_ttl_secs) + self.clock_skew_secs)
    }
    /// Number of concurrent Argon2id computations allowed.
    pub fn effective_hash_concurrency(&self) -> usize {
        if self.hash_concurrency > 0 {
            self.hash_concurrency
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }
}
