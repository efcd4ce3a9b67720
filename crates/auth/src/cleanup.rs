//! Deleting what has expired, so tables do not grow without bound.

use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use rampart_tenancy::TenantSlug;
use serde::Serialize;

use std::sync::Arc;

use rampart_tenancy::TenantPool;

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::schema::{
    authorization_codes, login_attempts, login_challenges, refresh_tokens, sessions,
};

/// Rows deleted (or cleared) by one cleanup of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Authorization codes.
    pub authorization_codes: usize,
    /// Refresh tokens.
    pub refresh_tokens: usize,
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
    /// (revoked ones after a day), expired or long-revoked sessions, challenges and old login attempts; erases
    /// sealed refresh successors once their grace window has passed.
    pub async fn cleanup_expired(&self, tenant: &TenantSlug) -> Result<CleanupReport, AuthError> {
        let attempts_keep = self.config.rate_limit_window_secs.max(86_400);
        let settings = self.pool.tenant_settings(tenant).await?;
        let grace = i64::try_from(crate::tenant_policy::effective_grace(
            &self.config,
            &settings,
        ))
        .unwrap_or(0);
        self.pool
            .with_tenant(tenant, async |conn| {
                let now = chrono::Utc::now();
                let day = now - chrono::Duration::days(1);
                let mut r = CleanupReport {
                    authorization_codes: 0,
                    ..CleanupReport::default()
                };
                r.authorization_codes = diesel::delete(
                    authorization_codes::table.filter(authorization_codes::expires_at.lt(day)),
                )
                .execute(conn)
                .await?;
                diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::successor_sealed.is_not_null())
                        .filter(
                            refresh_tokens::rotated_at.lt(now - chrono::Duration::seconds(grace)),
                        ),
                )
                .set(refresh_tokens::successor_sealed.eq(None::<String>))
                .execute(conn)
                .await?;
                r.refresh_tokens = diesel::delete(
                    refresh_tokens::table.filter(
                        refresh_tokens::family_expires_at
                            .lt(now)
                            .or(refresh_tokens::expires_at.lt(now))
                            .or(refresh_tokens::revoked_at.lt(day)),
                    ),
                )
                .execute(conn)
                .await?;
                r.sessions = diesel::delete(
                    sessions::table.filter(
                        sessions::expires_at
                            .lt(now)
                            .or(sessions::revoked_at.lt(day)),
                    ),
                )
                .execute(conn)
                .await?;
                r.login_challenges = diesel::delete(
                    login_challenges::table.filter(login_challenges::expires_at.lt(now)),
                )
                .execute(conn)
                .await?;
                let attempts_since =
                    now - chrono::Duration::seconds(i64::try_from(attempts_keep).unwrap_or(86_400));
                r.login_attempts = diesel::delete(
                    login_attempts::table.filter(login_attempts::attempted_at.lt(attempts_since)),
                )
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
            let r = self.cleanup_expired(&tenant.slug).await?;
            total += r.authorization_codes
                + r.refresh_tokens
                + r.sessions
                + r.login_challenges
                + r.login_attempts;
        }
        Ok(total)
    }
}
