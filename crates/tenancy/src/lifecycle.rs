//! Lifecycle: active ⇄ suspended → deactivated (retention) → purged.
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::pool::{TENANT_COLUMNS, TenantRow};
use crate::slug::quote_ident;
use crate::{TenancyError, Tenant, TenantPool, TenantSlug, TenantStatus};

/// One row of a tenant's event log.
#[derive(Debug, Clone, serde::Serialize, diesel::QueryableByName)]
pub struct TenantEvent {
    /// Sequence number.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What happened (`provisioned`, `suspended`, `resumed`, `deactivated`,
    /// `reactivated`, `purged`, `migrated`, `migration_failed`, ...).
    #[diesel(sql_type = Text)]
    pub event: String,
    /// Details.
    #[diesel(sql_type = Jsonb)]
    pub detail: serde_json::Value,
    /// Who did it.
    #[diesel(sql_type = Nullable<Text>)]
    pub actor: Option<String>,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy)]
enum Transition {
    Suspend,
    Resume,
    Deactivate,
    Reactivate,
}

impl Transition {
    fn allowed_from(self) -> &'static [TenantStatus] {
        match self {
            Self::Suspend => &[TenantStatus::Active],
            Self::Resume => &[TenantStatus::Suspended],
            Self::Deactivate => &[TenantStatus::Active, TenantStatus::Suspended],
            Self::Reactivate => &[TenantStatus::Deactivated],
        }
    }
    fn target(self) -> TenantStatus {
        match self {
            Self::Suspend => TenantStatus::Suspended,
            Self::Deactivate => TenantStatus::Deactivated,
            Self::Resume | Self::Reactivate => TenantStatus::Active,
        }
    }
    fn event(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Resume => "resumed",
            Self::Deactivate => "deactivated",
            Self::Reactivate => "reactivated",
        }
    }
}

async fn lock_tenant(
    conn: &mut AsyncPgConnection,
    slug: &TenantSlug,
) -> Result<Tenant, TenancyError> {
    let row: Vec<TenantRow> = diesel::sql_query(format!(
        "SELECT {TENANT_COLUMNS} FROM platform.tenants WHERE slug = $1 FOR UPDATE"
    ))
    .bind::<Text, _>(slug.as_str())
    .load(conn)
    .await?;
    row.into_iter()
        .next()
        .ok_or_else(|| TenancyError::NotFound(slug.to_string()))?
        .into_tenant()
}

impl TenantPool {
    /// Suspends an active tenant: its requests are refused, data intact.
    pub async fn suspend(
        &self,
        slug: &str,
        reason: &str,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Suspend, reason, actor, None)
            .await
    }

    /// Resumes a suspended tenant.
    pub async fn resume(&self, slug: &str, actor: Option<&str>) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Resume, "", actor, None)
            .await
    }

    /// Deactivates an active or suspended tenant; its data is kept until
    /// `retention` (default: the configured number of days) has passed.
    pub async fn deactivate(
        &self,
        slug: &str,
        retention: Option<chrono::Duration>,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        let retention = retention.unwrap_or_else(|| {
            chrono::Duration::days(i64::from(self.inner.config.default_retention_days))
        });
        self.transition(
            slug,
            Transition::Deactivate,
            "",
            actor,
            Some(Utc::now() + retention),
        )
        .await
    }

    /// Brings a deactivated (not yet purged) tenant back.
    pub async fn reactivate(
        &self,
        slug: &str,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Reactivate, "", actor, None)
            .await
    }

    async fn transition(
        &self,
        slug: &str,
        transition: Transition,
        reason: &str,
        actor: Option<&str>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Tenant, TenancyError> {
        let slug = TenantSlug::parse(slug)?;
        let mut conn = self.conn().await?;
        let tenant = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                let current = lock_tenant(conn, &slug).await?;
                if !transition.allowed_from().contains(&current.status) {
                    return Err(TenancyError::InvalidTransition {
                        slug: slug.to_string(),
                        from: current.status.to_string(),
                        to: transition.target().to_string(),
                    });
                }
                let row: TenantRow = diesel::sql_query(format!(
                    "WITH t AS (UPDATE platform.tenants SET status = $2, updated_at = now(), \
                       suspended_at = CASE WHEN $2 = 'suspended' THEN now() ELSE NULL END, \
                       deactivated_at = CASE WHEN $2 = 'deactivated' THEN now() ELSE NULL END, \
                       retention_deadline = $3 WHERE slug = $1 RETURNING *), \
                     e AS (INSERT INTO platform.tenant_events (tenant_id, slug, event, detail, actor) \
                       SELECT id, slug, $4, jsonb_build_object('from', $5::text, 'reason', $6::text), $7 FROM t) \
                     SELECT {TENANT_COLUMNS} FROM t"
                ))
                .bind::<Text, _>(slug.as_str())
                .bind::<Text, _>(transition.target().as_str())
                .bind::<Nullable<Timestamptz>, _>(deadline)
                .bind::<Text, _>(transition.event())
                .bind::<Text, _>(current.status.as_str())
                .bind::<Text, _>(reason)
                .bind::<Nullable<Text>, _>(actor)
                .get_result(conn)
                .await?;
                row.into_tenant()
            })
            .await?;
        self.invalidate(&slug).await;
        Ok(tenant)
    }

    /// Purges a deactivated tenant: drops its schema and role, keeps the
    /// registry row as a tombstone. Refused before the retention deadline
    /// unless `force`.
    pub async fn purge(
        &self,
        slug: &str,
        force: bool,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        let slug = TenantSlug::parse(slug)?;
        let mut conn = self.conn().await?;
        let tenant = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                let current = lock_tenant(conn, &slug).await?;
                if current.status != TenantStatus::Deactivated {
                    return Err(TenancyError::InvalidTransition {
                        slug: slug.to_string(),
                        from: current.status.to_string(),
                        to: TenantStatus::Purged.to_string(),
                    });
                }
                if let Some(deadline) = current.retention_deadline
                    && deadline > Utc::now()
                    && !force
                {
                    return Err(TenancyError::RetentionNotElapsed { slug: slug.to_string(), deadline: deadline.into() });
                }
                let (s, r) = (quote_ident(&current.schema_name), quote_ident(&current.role_name));
                conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE; DROP OWNED BY {r}; DROP ROLE {r};"))
                    .await?;
                let row: TenantRow = diesel::sql_query(format!(
                    "WITH t AS (UPDATE platform.tenants SET status = 'purged', purged_at = now(), updated_at = now(), \
                       settings = '{{}}'::jsonb, feature_flags = '{{}}'::jsonb WHERE slug = $1 RETURNING *), \
                     e AS (INSERT INTO platform.tenant_events (tenant_id, slug, event, detail, actor) \
                       SELECT id, slug, 'purged', jsonb_build_object('forced', $2::text), $3 FROM t) \
                     SELECT {TENANT_COLUMNS} FROM t"
                ))
                .bind::<Text, _>(slug.as_str())
                .bind::<Text, _>(force.to_string())
                .bind::<Nullable<Text>, _>(actor)
                .get_result(conn)
                .await?;
                row.into_tenant()
            })
            .await?;
        self.invalidate(&slug).await;
        Ok(tenant)
    }

    /// Purges every deactivated tenant whose retention deadline has passed
    /// (for a scheduled job). Returns the purged slugs.
    pub async fn purge_expired(&self) -> Result<Vec<String>, TenancyError> {
        let expired: Vec<Tenant> = self
            .list()
            .await?
            .into_iter()
            .filter(|t| {
                t.status == TenantStatus::Deactivated
                    && t.retention_deadline.is_some_and(|d| d <= Utc::now())
            })
            .collect();
        let mut purged = Vec::new();
        for t in expired {
            self.purge(t.slug.as_str(), false, Some("retention-job"))
                .await?;
            purged.push(t.slug.to_string());
        }
        Ok(purged)
    }

    /// The tenant's event log, oldest first.
    pub async fn events(&self, slug: &str) -> Result<Vec<TenantEvent>, TenancyError> {
        let slug = TenantSlug::parse(slug)?;
        let mut conn = self.conn().await?;
        Ok(diesel::sql_query(
            "SELECT id, event, detail, actor, created_at FROM platform.tenant_events WHERE slug = $1 ORDER BY id",
        )
        .bind::<Text, _>(slug.as_str())
        .load(&mut *conn)
        .await?)
    }

    /// Marks a tenant as a canary (migrated first).
    pub async fn set_canary(&self, slug: &str, canary: bool) -> Result<(), TenancyError> {
        let slug = TenantSlug::parse(slug)?;
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(
            "UPDATE platform.tenants SET is_canary = $2, updated_at = now() WHERE slug = $1",
        )
        .bind::<Text, _>(slug.as_str())
        .bind::<diesel::sql_types::Bool, _>(canary)
        .execute(&mut *conn)
        .await?;
        if n == 0 {
            return Err(TenancyError::NotFound(slug.to_string()));
        }
        Ok(())
    }
}
