//! The platform's admin audit trail: who (by client certificate) changed
//! what through the admin listener.
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::{TenancyError, TenantPool};

/// One audited admin action.
#[derive(Debug, Clone, serde::Serialize, diesel::QueryableByName)]
pub struct AdminAction {
    /// Sequence number (0 before it is recorded).
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    /// Operator certificate subject.
    #[diesel(sql_type = Text)]
    pub subject: String,
    /// Its subject alternative names.
    #[diesel(sql_type = Array<Text>)]
    pub sans: Vec<String>,
    /// SHA-256 of the certificate.
    #[diesel(sql_type = Text)]
    pub fingerprint: String,
    /// HTTP method.
    #[diesel(sql_type = Text)]
    pub method: String,
    /// Route pattern.
    #[diesel(sql_type = Text)]
    pub route: String,
    /// Path as requested.
    #[diesel(sql_type = Text)]
    pub path: String,
    /// Response status.
    #[diesel(sql_type = Integer)]
    pub status: i32,
    /// Correlation id.
    #[diesel(sql_type = Text)]
    pub request_id: String,
    /// Client address.
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
}

impl TenantPool {
    /// Appends an admin action to `platform.admin_audit`.
    pub async fn record_admin_action(&self, action: &AdminAction) -> Result<(), TenancyError> {
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO platform.admin_audit (subject, sans, fingerprint, method, route, path, status, request_id, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind::<Text, _>(&action.subject)
        .bind::<Array<Text>, _>(&action.sans)
        .bind::<Text, _>(&action.fingerprint)
        .bind::<Text, _>(&action.method)
        .bind::<Text, _>(&action.route)
        .bind::<Text, _>(&action.path)
        .bind::<Integer, _>(action.status)
        .bind::<Text, _>(&action.request_id)
        .bind::<Nullable<Text>, _>(action.ip.as_deref())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The newest admin actions, newest first.
    pub async fn admin_actions(&self, limit: i64) -> Result<Vec<AdminAction>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(diesel::sql_query(
            "SELECT id, occurred_at, subject, sans, fingerprint, method, route, path, status, request_id, ip \
             FROM platform.admin_audit ORDER BY id DESC LIMIT $1",
        )
        .bind::<BigInt, _>(limit.clamp(1, 1000))
        .load(&mut *conn)
        .await?)
    }
}
