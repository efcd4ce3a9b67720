//! Usage (sizes, row estimates, checkouts) and health of a tenant.
use std::time::Instant;

use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::schema::{__diesel_schema_migrations as ledger, tenant_usage};
use crate::{TenancyError, TenantPool, TenantSlug, TenantStatus};

/// Size of one table of a tenant.
#[derive(Debug, Clone, serde::Serialize, diesel::QueryableByName)]
pub struct TableUsage {
    /// Table name.
    #[diesel(sql_type = Text)]
    pub table: String,
    /// Planner's row estimate (`reltuples`; -1 before the first ANALYZE).
    #[diesel(sql_type = BigInt)]
    pub row_estimate: i64,
    /// Bytes including indexes and TOAST.
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

/// Resource usage of one tenant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantUsage {
    /// The tenant.
    pub tenant_id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Total bytes of its schema.
    pub schema_bytes: i64,
    /// Per table.
    pub tables: Vec<TableUsage>,
    /// Connection checkouts for this tenant: those flushed to the registry
    /// by every replica plus this pool's unflushed ones.
    pub checkouts: u64,
}

/// Health of one tenant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantHealth {
    /// The tenant.
    pub slug: String,
    /// Its status.
    pub status: TenantStatus,
    /// A transaction as the tenant's role in its schema succeeded.
    pub reachable: bool,
    /// Newest migration in its ledger.
    pub migration_version: Option<String>,
    /// The template's newest migration.
    pub latest_version: String,
    /// `migration_version == latest_version`.
    pub migrations_current: bool,
    /// Round-trip time of the probe.
    pub latency_ms: f64,
    /// What failed, if anything.
    pub error: Option<String>,
}

impl TenantPool {
    /// Schema size, per-table sizes and row estimates, checkouts.
    pub async fn usage(&self, slug: &TenantSlug) -> Result<TenantUsage, TenancyError> {
        let tenant = self.tenant(slug).await?;
        let mut conn = self.conn().await?;
        // raw SQL: a catalog query (pg_class sizes) with no diesel schema
        let tables: Vec<TableUsage> = diesel::sql_query(
            "SELECT c.relname::text AS table, c.reltuples::bigint AS row_estimate, \
                    pg_total_relation_size(c.oid)::bigint AS bytes \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm') ORDER BY c.relname",
        )
        .bind::<Text, _>(&tenant.schema_name)
        .load(&mut *conn)
        .await?;
        let flushed: Option<i64> = tenant_usage::table
            .find(tenant.id)
            .select(tenant_usage::checkouts)
            .first(&mut *conn)
            .await
            .optional()?;
        let flushed = flushed.map(|n| u64::try_from(n).unwrap_or(0)).unwrap_or(0);
        Ok(TenantUsage {
            tenant_id: tenant.id,
            slug: tenant.slug.to_string(),
            schema_bytes: tables.iter().map(|t| t.bytes).sum(),
            tables,
            checkouts: flushed + self.checkouts(tenant.id),
        })
    }

    /// Probes a tenant: a transaction as its role in its schema that reads
    /// its migration ledger. Works for suspended tenants too (operators need
    /// to see them); purged tenants are reported unreachable.
    pub async fn health(&self, slug: &TenantSlug) -> Result<TenantHealth, TenancyError> {
        let tenant = self.tenant(slug).await?;
        let latest = self.inner.template.latest_version().to_owned();
        let started = Instant::now();
        let probe = if tenant.status == TenantStatus::Purged {
            Err(TenancyError::Purged(tenant.slug.to_string()))
        } else {
            self.run_in_schema(&tenant, async |conn| {
                let version: Option<String> = ledger::table
                    .select(max(ledger::version))
                    .get_result(conn)
                    .await?;
                Ok::<_, TenancyError>(version)
            })
            .await
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(match probe {
            Ok(version) => TenantHealth {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                reachable: true,
                migrations_current: version.as_deref() == Some(latest.as_str()),
                migration_version: version,
                latest_version: latest,
                latency_ms,
                error: None,
            },
            Err(e) => TenantHealth {
                slug: tenant.slug.to_string(),
                status: tenant.status,
                reachable: false,
                migration_version: None,
                migrations_current: false,
                latest_version: latest,
                latency_ms,
                error: Some(e.to_string()),
            },
        })
    }
}
