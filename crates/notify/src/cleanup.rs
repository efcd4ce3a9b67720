//! Deleting the notifier's rows nothing reads any more, so its tables do
//! not grow without bound.
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_tenancy::Due;
use rampart_tenancy::TenantSlug;

use crate::schema::{email_tokens, login_device_checks};
use crate::{Notifier, NotifyError};

/// Rows deleted by one cleanup of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotifyCleanup {
    /// E-mail links (verification, password reset) a day past their expiry
    /// or their use: either way they only answer "invalid token", as an
    /// unknown one does.
    pub email_tokens: usize,
    /// New-device check marks older than two hours: the check reads only
    /// the sessions of the last hour, so an older mark guards nothing.
    pub login_device_checks: usize,
}

impl Notifier {
    /// Deletes `tenant`'s spent e-mail links and old new-device check marks.
    pub async fn cleanup(&self, tenant: &TenantSlug) -> Result<NotifyCleanup, NotifyError> {
        self.pool
            .with_tenant(tenant, async |conn| {
                let now = Utc::now();
                let day = now - chrono::Duration::days(1);
                let email_tokens = diesel::delete(
                    email_tokens::table.filter(
                        email_tokens::expires_at
                            .lt(day)
                            .or(email_tokens::used_at.lt(day)),
                    ),
                )
                .execute(conn)
                .await?;
                let login_device_checks =
                    diesel::delete(login_device_checks::table.filter(
                        login_device_checks::checked_at.lt(now - chrono::Duration::hours(2)),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, NotifyError>(NotifyCleanup {
                    email_tokens,
                    login_device_checks,
                })
            })
            .await
    }

    /// [`Self::cleanup`] for every active tenant; one tenant's failure is
    /// logged and does not stop the others. Returns the rows deleted.
    pub async fn cleanup_all(&self) -> Result<usize, NotifyError> {
        let mut deleted = 0;
        for tenant in self.active_tenants(&Due::All).await? {
            match self.cleanup(&tenant).await {
                Ok(r) => deleted += r.email_tokens + r.login_device_checks,
                Err(e) => tracing::warn!(%tenant, error = %e, "notify cleanup failed"),
            }
        }
        Ok(deleted)
    }
}
