//! Deleting what has expired, so tables do not grow without bound.

use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use std::sync::Arc;

use rampart_tenancy::TenantPool;

use crate::config::AuthConfig;
use crate::error::AuthError;

/// Rows deleted (or cleared) by one cleanup of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Authorization codes.
    pub authorization_codes: usize,
    /// Refresh tokens.
    pub refresh_tokens: usize,
    /// Recorded access token ids.
    pub access_tokens: usize,
    /// Sessions.
    pub sessions: usize,
    /// Login challenges.
    pub login_challenges: usize,
    /// Login attempts.
    pub login_attempts: usize,
}

/// Deletes expired rows of every tenant.
#[derive(Clone)]
pub struct CleanupService {
    pub(crate) pool: TenantPool,
    pub(crate) config: Arc<AuthConfig>,
}

impl std::fmt::Debug for CleanupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupService").finish_non_exhaustive()
    }
}

impl CleanupService {
    /// Deletes expired codes (kept a day after expiry so replays are still
    /// recognised), refresh tokens past their idle or absolute lifetime
    /// (revoked ones after a day), access token records, expired or
    /// long-revoked sessions, challenges and old login attempts; erases
    /// sealed refresh successors once their grace window has passed.
    pub async fn cleanup_expired(&self, tenant: &str) -> Result<CleanupReport, AuthError> {
        let attempts_keep = self.config.rate_limit_window_secs.max(86_400);
        let grace = i64::try_from(self.config.refresh_grace_secs).unwrap_or(10);
        self.pool
            .with_tenant(tenant, async |conn| {
                let now = chrono::Utc::now();
                let day = now - chrono::Duration::days(1);
                let mut r = CleanupReport {
                    authorization_codes: 0,
                    ..CleanupReport::default()
                };
                r.authorization_codes = diesel::sql_query("DELETE FROM authorization_codes WHERE expires_at < $1")
                    .bind::<Timestamptz, _>(day)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL \
                     AND rotated_at < $1",
                )
                .bind::<Timestamptz, _>(now - chrono::Duration::seconds(grace))
                .execute(conn)
                .await?;
                r.refresh_tokens = diesel::sql_query(
                    "DELETE FROM refresh_tokens WHERE family_expires_at < $1 OR expires_at < $1 OR revoked_at < $2",
                )
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(day)
                .execute(conn)
                .await?;
                r.access_tokens = diesel::sql_query("DELETE FROM access_tokens WHERE expires_at < $1")
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                r.sessions = diesel::sql_query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $2")
                    .bind::<Timestamptz, _>(now)
                    .bind::<Timestamptz, _>(day)
                    .execute(conn)
                    .await?;
                r.login_challenges = diesel::sql_query("DELETE FROM login_challenges WHERE expires_at < $1")
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                r.login_attempts = diesel::sql_query(
                    "DELETE FROM login_attempts WHERE attempted_at < $1 - make_interval(secs => $2)",
                )
                .bind::<Timestamptz, _>(now)
                .bind::<BigInt, _>(i64::try_from(attempts_keep).unwrap_or(86_400))
                .execute(conn)
                .await?;
                Ok(r)
            })
            .await
    }

    /// Cleans every active tenant now; returns how many rows went.
    pub async fn cleanup_all_tenants(&self) -> Result<usize, AuthError> {
        let mut total = 0;
        for tenant in self.pool.list().await? {
            if tenant.status != rampart_tenancy::TenantStatus::Active {
                continue;
            }
            let r = self.cleanup_expired(tenant.slug.as_str()).await?;
            total += r.authorization_codes
                + r.refresh_tokens
                + r.access_tokens
                + r.sessions
                + r.login_challenges
                + r.login_attempts;
        }
        Ok(total)
    }
}
