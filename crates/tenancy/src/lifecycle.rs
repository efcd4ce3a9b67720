//! Lifecycle: active ⇄ suspended → deactivated (retention) → purged.
use chrono::{DateTime, Utc};
use diesel::dsl::{case_when, now};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::pool::TenantRow;
use crate::schema::{tenant_events, tenants};
use crate::{TenancyError, Tenant, TenantPool, TenantSlug, TenantStatus};

/// One row of a tenant's event log.
#[derive(Debug, Clone, serde::Serialize, Queryable, Selectable)]
#[diesel(table_name = tenant_events, check_for_backend(diesel::pg::Pg))]
pub struct TenantEvent {
    /// Sequence number.
    pub id: i64,
    /// What happened (`provisioned`, `suspended`, `resumed`, `deactivated`,
    /// `reactivated`, `purged`, `migrated`, `migration_failed`, ...).
    pub event: String,
    /// Details.
    pub detail: serde_json::Value,
    /// Who did it.
    pub actor: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A row for the event log.
#[derive(Insertable)]
#[diesel(table_name = tenant_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewTenantEvent<'a> {
    pub tenant_id: Option<Uuid>,
    pub slug: &'a str,
    pub event: &'a str,
    pub detail: serde_json::Value,
    pub actor: Option<&'a str>,
}

impl NewTenantEvent<'_> {
    /// Appends the event (in the caller's transaction, if any).
    pub(crate) async fn record(&self, conn: &mut AsyncPgConnection) -> Result<(), TenancyError> {
        diesel::insert_into(tenant_events::table)
            .values(self)
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Transition {
    Suspend,
    Resume,
    Deactivate,
    Reactivate,
    /// Drops the schema and role; `force` disregards the retention deadline.
    Purge {
        force: bool,
    },
}

impl Transition {
    fn allowed_from(self) -> &'static [TenantStatus] {
        match self {
            Self::Suspend => &[TenantStatus::Active],
            Self::Resume => &[TenantStatus::Suspended],
            Self::Deactivate => &[TenantStatus::Active, TenantStatus::Suspended],
            Self::Reactivate | Self::Purge { .. } => &[TenantStatus::Deactivated],
        }
    }
    fn target(self) -> TenantStatus {
        match self {
            Self::Suspend => TenantStatus::Suspended,
            Self::Deactivate => TenantStatus::Deactivated,
            Self::Resume | Self::Reactivate => TenantStatus::Active,
            Self::Purge { .. } => TenantStatus::Purged,
        }
    }
    fn event(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Resume => "resumed",
            Self::Deactivate => "deactivated",
            Self::Reactivate => "reactivated",
            Self::Purge { .. } => "purged",
        }
    }
}

async fn lock_tenant(
    conn: &mut AsyncPgConnection,
    slug: &TenantSlug,
) -> Result<Tenant, TenancyError> {
    tenants::table
        .filter(tenants::slug.eq(slug.as_str()))
        .select(TenantRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| TenancyError::NotFound(slug.to_string()))?
        .into_tenant()
}

/// Sets the locked tenant `slug`'s status to `target` and its retention
/// `deadline`; `suspended_at` and `deactivated_at` are stamped now when
/// `target` is that status and cleared otherwise.
async fn set_status(
    conn: &mut AsyncPgConnection,
    slug: &TenantSlug,
    target: TenantStatus,
    deadline: Option<DateTime<Utc>>,
) -> Result<Tenant, TenancyError> {
    diesel::update(tenants::table.filter(tenants::slug.eq(slug.as_str())))
        .set((
            tenants::status.eq(target.as_str()),
            tenants::updated_at.eq(now),
            tenants::suspended_at.eq(case_when::<_, _, Timestamptz>(
                (target == TenantStatus::Suspended).into_sql::<Bool>(),
                now,
            )),
            tenants::deactivated_at.eq(case_when::<_, _, Timestamptz>(
                (target == TenantStatus::Deactivated).into_sql::<Bool>(),
                now,
            )),
            tenants::retention_deadline.eq(deadline),
        ))
        .returning(TenantRow::as_returning())
        .get_result::<TenantRow>(conn)
        .await?
        .into_tenant()
}

/// Purges the locked, deactivated tenant `slug`, `current` as it was
/// (refused before its retention deadline unless `force`): drops its schema
/// and role and leaves the registry row as a tombstone.
async fn purge_schema(
    conn: &mut AsyncPgConnection,
    slug: &TenantSlug,
    current: &Tenant,
    force: bool,
) -> Result<Tenant, TenancyError> {
    if let Some(deadline) = current.retention_deadline
        && deadline > Utc::now()
        && !force
    {
        return Err(TenancyError::RetentionNotElapsed {
            slug: slug.to_string(),
            deadline: deadline.into(),
        });
    }
    TenantPool::drop_schema_and_role(conn, &current.schema_name, &current.role_name).await?;
    diesel::update(tenants::table.filter(tenants::slug.eq(slug.as_str())))
        .set((
            tenants::status.eq(TenantStatus::Purged.as_str()),
            tenants::purged_at.eq(now),
            tenants::updated_at.eq(now),
            tenants::settings.eq(serde_json::json!({})),
            tenants::feature_flags.eq(serde_json::json!({})),
        ))
        .returning(TenantRow::as_returning())
        .get_result::<TenantRow>(conn)
        .await?
        .into_tenant()
}

impl TenantPool {
    /// Suspends an active tenant: its requests are refused, data intact.
    pub async fn suspend(
        &self,
        slug: &TenantSlug,
        reason: &str,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Suspend, reason, actor, None)
            .await
    }

    /// Resumes a suspended tenant.
    pub async fn resume(
        &self,
        slug: &TenantSlug,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Resume, "", actor, None)
            .await
    }

    /// Deactivates an active or suspended tenant; its data is kept until
    /// `retention` (default: the configured number of days) has passed.
    pub async fn deactivate(
        &self,
        slug: &TenantSlug,
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
        slug: &TenantSlug,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Reactivate, "", actor, None)
            .await
    }

    /// Changes the tenant's status in one transaction (its registry row
    /// locked, the transition checked against its status), records the
    /// event, then drops the tenant from the cache.
    async fn transition(
        &self,
        slug: &TenantSlug,
        transition: Transition,
        reason: &str,
        actor: Option<&str>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Tenant, TenancyError> {
        let mut conn = self.conn().await?;
        let tenant = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                let current = lock_tenant(conn, slug).await?;
                if !transition.allowed_from().contains(&current.status) {
                    return Err(TenancyError::InvalidTransition {
                        slug: slug.to_string(),
                        from: current.status.to_string(),
                        to: transition.target().to_string(),
                    });
                }
                let (tenant, detail) = match transition {
                    Transition::Purge { force } => (
                        purge_schema(conn, slug, &current, force).await?,
                        serde_json::json!({"forced": force.to_string()}),
                    ),
                    _ => (
                        set_status(conn, slug, transition.target(), deadline).await?,
                        serde_json::json!({"from": current.status.as_str(), "reason": reason}),
                    ),
                };
                NewTenantEvent {
                    tenant_id: Some(tenant.id),
                    slug: slug.as_str(),
                    event: transition.event(),
                    detail,
                    actor,
                }
                .record(conn)
                .await?;
                Ok(tenant)
            })
            .await?;
        self.invalidate(slug).await;
        Ok(tenant)
    }

    /// Purges a deactivated tenant: drops its schema and role, keeps the
    /// registry row as a tombstone. Refused before the retention deadline
    /// unless `force`.
    pub async fn purge(
        &self,
        slug: &TenantSlug,
        force: bool,
        actor: Option<&str>,
    ) -> Result<Tenant, TenancyError> {
        self.transition(slug, Transition::Purge { force }, "", actor, None)
            .await
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
            self.purge(&t.slug, false, Some("retention-job")).await?;
            purged.push(t.slug.to_string());
        }
        Ok(purged)
    }

    /// The tenant's event log, oldest first.
    pub async fn events(&self, slug: &TenantSlug) -> Result<Vec<TenantEvent>, TenancyError> {
        let mut conn = self.conn().await?;
        Ok(tenant_events::table
            .filter(tenant_events::slug.eq(slug.as_str()))
            .select(TenantEvent::as_select())
            .order(tenant_events::id)
            .load(&mut *conn)
            .await?)
    }

    /// Marks a tenant as a canary (migrated first).
    pub async fn set_canary(&self, slug: &TenantSlug, canary: bool) -> Result<(), TenancyError> {
        let mut conn = self.conn().await?;
        let n = diesel::update(tenants::table.filter(tenants::slug.eq(slug.as_str())))
            .set((tenants::is_canary.eq(canary), tenants::updated_at.eq(now)))
            .execute(&mut *conn)
            .await?;
        if n == 0 {
            return Err(TenancyError::NotFound(slug.to_string()));
        }
        Ok(())
    }
}
