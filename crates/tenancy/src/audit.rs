//! The platform's admin audit trail: who (by client certificate) changed
//! what through the admin listener.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::admin_audit;
use crate::{TenancyError, TenantPool};

/// One audited admin action.
#[derive(Debug, Clone, serde::Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = admin_audit, check_for_backend(diesel::pg::Pg))]
pub struct AdminAction {
    /// Sequence number (0 before it is recorded).
    #[diesel(skip_insertion)]
    pub id: i64,
    /// When (the database's clock when it is recorded).
    #[diesel(skip_insertion)]
    pub occurred_at: DateTime<Utc>,
    /// Operator certificate subject.
    pub subject: String,
    /// Its subject alternative names.
    pub sans: Vec<String>,
    /// SHA-256 of the certificate.
    pub fingerprint: String,
    /// HTTP method.
    pub method: String,
    /// Route pattern.
    pub route: String,
    /// Path as requested.
    pub path: String,
    /// Response status.
    pub status: i32,
    /// Correlation id.
    pub request_id: String,
    /// Client address.
    pub ip: Option<String>,
}

impl TenantPool {
    /// Appends an admin action to `platform.admin_audit`.
    pub async fn record_admin_action(&self, action: &AdminAction) -> Result<(), TenancyError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(admin_audit::table)
            .values(action)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The newest admin actions, newest first.
    pub async fn admin_actions(&self, limit: i64) -> Result<Vec<AdminAction>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(admin_audit::table
            .select(AdminAction::as_select())
            .order(admin_audit::id.desc())
            .limit(limit.clamp(1, 1000))
            .load(&mut *conn)
            .await?)
    }
}
