//! Bringing every tenant schema to the newest template.
use std::time::{Duration, Instant};

use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::StreamExt;
use uuid::Uuid;

use crate::lifecycle::NewTenantEvent;
use crate::migrations::{applied_versions, apply};
use crate::schema::{tenant_migrations, tenants};
use crate::{TenancyError, TenantPool, TenantStatus};

/// What happened to one tenant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationOutcome {
    /// The tenant.
    pub slug: String,
    /// Its version before.
    pub from_version: String,
    /// Migrations applied (empty on failure: the transaction rolled back).
    pub applied: Vec<String>,
    /// The error, if it failed.
    pub error: Option<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// The result of [`TenantPool::migrate_all`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrationReport {
    /// The version every tenant should reach.
    pub target_version: String,
    /// Tenants that were behind when the run started.
    pub behind: usize,
    /// Tenants migrated.
    pub succeeded: Vec<MigrationOutcome>,
    /// Tenants that failed (their schema is unchanged; a rerun retries them).
    pub failed: Vec<MigrationOutcome>,
    /// Tenants another process was migrating.
    pub busy: Vec<String>,
    /// Tenants not attempted because a canary failed.
    pub not_attempted: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

impl MigrationReport {
    /// True when every tenant that was behind is now current.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.busy.is_empty() && self.not_attempted.is_empty()
    }
}

/// Progress events for a progress bar.
#[derive(Debug, Clone)]
pub enum MigrationProgress {
    /// The run found this many tenants behind.
    Started {
        /// Tenants to migrate.
        total: usize,
    },
    /// One tenant finished.
    TenantDone {
        /// The tenant.
        slug: String,
        /// Whether it succeeded.
        ok: bool,
    },
}

#[derive(Queryable, Clone)]
struct Behind {
    id: Uuid,
    slug: String,
    schema_name: String,
    role_name: String,
    version: String,
    is_canary: bool,
}

impl Behind {
    /// Records `event` in the tenant's event log, by no actor (the run).
    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        event: &str,
        detail: serde_json::Value,
    ) -> Result<(), TenancyError> {
        NewTenantEvent {
            tenant_id: Some(self.id),
            slug: &self.slug,
            event,
            detail,
            actor: None,
        }
        .record(conn)
        .await
    }
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

enum One {
    Done(MigrationOutcome),
    Failed(MigrationOutcome),
    Busy(String),
}

impl TenantPool {
    /// The tenants (active, suspended or deactivated) whose schema is behind
    /// the template, or whose last migration failed, by slug: what
    /// [`TenantPool::migrate_all`] would migrate. One query on the central
    /// state table. A server checks it at start: a tenant behind the
    /// binary's template fails on the tables its code expects.
    pub async fn tenants_behind(&self) -> Result<Vec<String>, TenancyError> {
        let (_, behind) = self.behind().await?;
        Ok(behind.into_iter().map(|b| b.slug).collect())
    }

    /// The template's latest version and the tenants behind it, canaries
    /// first, then oldest first.
    async fn behind(&self) -> Result<(String, Vec<Behind>), TenancyError> {
        let target = self.inner.template.latest_version().to_owned();
        let checksum = self.inner.template.checksum();
        let mut conn = self.conn().await?;
        let live = [
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Deactivated,
        ]
        .map(TenantStatus::as_str);
        let behind = tenant_migrations::table
            .inner_join(tenants::table)
            // Behind: an older latest version, a failed run, or the same
            // latest version from another set of migrations (one merged with
            // an older timestamp than one already applied: the per-tenant
            // run applies whatever its ledger lacks). A tenant ahead of this
            // build (a newer replica migrated it) is left alone.
            .filter(
                tenant_migrations::version
                    .lt(&target)
                    .or(tenant_migrations::status.ne("ok"))
                    .or(tenant_migrations::checksum
                        .ne(&checksum)
                        .and(tenant_migrations::version.eq(&target))),
            )
            .filter(tenants::status.eq_any(live))
            .order((tenants::is_canary.desc(), tenants::created_at))
            .select((
                tenants::id,
                tenants::slug,
                tenants::schema_name,
                tenants::role_name,
                tenant_migrations::version,
                tenants::is_canary,
            ))
            .load(&mut *conn)
            .await?;
        Ok((target, behind))
    }

    /// Migrates every tenant that is behind the template (see
    /// [`TenantPool::migrate_all_with_progress`]).
    pub async fn migrate_all(&self) -> Result<MigrationReport, TenancyError> {
        self.migrate_all_with_progress(|_| {}).await
    }

    /// Migrates every tenant that is behind: found with one query on the
    /// central state table (so a run with nothing to do costs one round
    /// trip); canary tenants first (a failing canary stops the run); then the
    /// rest with bounded parallelism, each tenant in its own transaction under
    /// its own advisory lock. One tenant's failure does not stop the others;
    /// a crash leaves each tenant either migrated or untouched, so a rerun
    /// resumes.
    pub async fn migrate_all_with_progress(
        &self,
        progress: impl Fn(MigrationProgress) + Send + Sync,
    ) -> Result<MigrationReport, TenancyError> {
        let started = Instant::now();
        let (target, behind) = self.behind().await?;
        progress(MigrationProgress::Started {
            total: behind.len(),
        });
        let mut report = MigrationReport {
            target_version: target,
            behind: behind.len(),
            ..Default::default()
        };
        let (canaries, rest): (Vec<Behind>, Vec<Behind>) =
            behind.into_iter().partition(|b| b.is_canary);
        let concurrency = self
            .inner
            .config
            .migrate_concurrency
            .min(self.inner.config.max_connections.saturating_sub(1))
            .max(1);
        for batch in [canaries, rest] {
            if !report.failed.is_empty() {
                // A canary failed: leave the rest for after the fix.
                report
                    .not_attempted
                    .extend(batch.into_iter().map(|b| b.slug));
                continue;
            }
            let mut results = futures::stream::iter(batch)
                .map(|b| self.migrate_one(b))
                .buffer_unordered(concurrency);
            while let Some(result) = results.next().await {
                match result {
                    One::Done(o) => {
                        progress(MigrationProgress::TenantDone {
                            slug: o.slug.clone(),
                            ok: true,
                        });
                        report.succeeded.push(o);
                    }
                    One::Failed(o) => {
                        progress(MigrationProgress::TenantDone {
                            slug: o.slug.clone(),
                            ok: false,
                        });
                        report.failed.push(o);
                    }
                    One::Busy(slug) => {
                        progress(MigrationProgress::TenantDone {
                            slug: slug.clone(),
                            ok: false,
                        });
                        report.busy.push(slug);
                    }
                }
            }
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn migrate_one(&self, tenant: Behind) -> One {
        let started = Instant::now();
        let outcome = |applied: Vec<String>, error: Option<String>| MigrationOutcome {
            slug: tenant.slug.clone(),
            from_version: tenant.version.clone(),
            applied,
            error,
            elapsed: started.elapsed(),
        };
        let mut conn = match self.conn().await {
            Ok(c) => c,
            Err(e) => return One::Failed(outcome(Vec::new(), Some(e.to_string()))),
        };
        let result = self.migrate_in_transaction(&mut conn, &tenant).await;
        self.invalidate_str(&tenant.slug).await;
        match result {
            Ok(applied) => One::Done(outcome(applied, None)),
            Err(TenancyError::Busy(slug)) => One::Busy(slug),
            Err(e) => {
                let message = e.to_string();
                let recorded = conn
                    .transaction::<_, TenancyError, _>(async |conn| {
                        diesel::update(tenant_migrations::table.find(tenant.id))
                            .set((
                                tenant_migrations::status.eq("failed"),
                                tenant_migrations::error.eq(&message),
                                tenant_migrations::attempts.eq(tenant_migrations::attempts + 1),
                                tenant_migrations::updated_at.eq(now),
                            ))
                            .execute(conn)
                            .await?;
                        tenant
                            .record(
                                conn,
                                "migration_failed",
                                serde_json::json!({"error": message}),
                            )
                            .await
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::error!(tenant = %tenant.slug, error = %e, "could not record a migration failure");
                }
                One::Failed(outcome(Vec::new(), Some(message)))
            }
        }
    }

    async fn migrate_in_transaction(
        &self,
        conn: &mut AsyncPgConnection,
        tenant: &Behind,
    ) -> Result<Vec<String>, TenancyError> {
        let template = &self.inner.template;
        let lock_timeout = format!("{}ms", self.inner.config.lock_timeout_ms);
        conn.transaction::<_, TenancyError, _>(async |conn| {
            // raw SQL: an advisory lock
            let locked: Locked = diesel::sql_query(
                "SELECT pg_try_advisory_xact_lock(hashtext('rampart.migrate'), hashtext($1)) AS locked",
            )
            .bind::<Text, _>(&tenant.schema_name)
            .get_result(conn)
            .await?;
            if !locked.locked {
                return Err(TenancyError::Busy(tenant.slug.clone()));
            }
            // raw SQL: set_config (transaction-local routing)
            let route = diesel::sql_query(
                "SELECT set_config('search_path', $1, true), set_config('role', $2, true), \
                 set_config('lock_timeout', $3, true)",
            )
            .bind::<Text, _>(&tenant.schema_name)
            .bind::<Text, _>(&tenant.role_name)
            .bind::<Text, _>(&lock_timeout);
            route.clone().execute(conn).await?;
            let applied = applied_versions(conn).await?;
            // The append-only tables are handed to the tenant role only for a
            // migration that names them (each unlock and lock-down is several
            // ownership changes, a third of a migration's time at 10,000
            // tenants); one that reaches them some other way fails on
            // ownership, loudly, and changes nothing.
            let unlock = template
                .pending(&applied)
                .any(|m| crate::append_only::touched_by(&m.up_sql));
            if unlock {
                conn.batch_execute("RESET ROLE").await?;
                crate::append_only::unlock(conn, &tenant.schema_name, &tenant.role_name).await?;
                route.execute(conn).await?;
            }
            let done = apply(conn, template.pending(&applied)).await?;
            conn.batch_execute("RESET ROLE").await?;
            if unlock {
                crate::append_only::lock_down(conn, &tenant.schema_name, &tenant.role_name).await?;
            }
            diesel::update(tenant_migrations::table.find(tenant.id))
                .set((
                    tenant_migrations::version.eq(template.latest_version()),
                    tenant_migrations::checksum.eq(template.checksum()),
                    tenant_migrations::status.eq("ok"),
                    tenant_migrations::error.eq(None::<String>),
                    tenant_migrations::attempts.eq(tenant_migrations::attempts + 1),
                    tenant_migrations::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            let to = template.latest_version();
            let detail = serde_json::json!({"from": tenant.version, "to": to});
            tenant.record(conn, "migrated", detail).await?;
            Ok(done)
        })
        .await
    }
}
