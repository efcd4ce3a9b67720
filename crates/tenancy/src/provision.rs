//! Creating tenants: role, schema, baseline, ledger and registry row in one
//! transaction.
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use crate::baseline::fingerprint;
use crate::lifecycle::NewTenantEvent;
use crate::migrations::{LEDGER_DDL, apply};
use crate::pool::TenantRow;
use crate::schema::{tenant_migrations, tenant_usage, tenants};
use crate::slug::{quote_ident, quote_literal};
use crate::{TenancyError, Tenant, TenantPool, TenantSlug};

/// Options for [`TenantPool::provision_with`].
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// Migrate this tenant first in `migrate_all`.
    pub canary: bool,
    /// Initial settings (a JSON object).
    pub settings: Option<serde_json::Value>,
    /// Initial feature flags.
    pub feature_flags: std::collections::BTreeMap<String, bool>,
    /// Who asked (recorded in the event log).
    pub actor: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

impl TenantPool {
    /// Provisions a tenant; [`TenancyError::AlreadyExists`] if the slug is
    /// taken (also when many tasks race for one slug: exactly one wins).
    pub async fn provision(
        &self,
        slug: &TenantSlug,
        display_name: &str,
    ) -> Result<Tenant, TenancyError> {
        self.provision_with(slug, display_name, ProvisionOptions::default())
            .await
    }

    /// Provisions a tenant unless it exists; returns it either way
    /// (idempotent).
    pub async fn ensure_tenant(
        &self,
        slug: &TenantSlug,
        display_name: &str,
    ) -> Result<Tenant, TenancyError> {
        match self.provision(slug, display_name).await {
            Err(TenancyError::AlreadyExists(_)) => self.tenant(slug).await,
            other => other,
        }
    }

    /// Provisions a tenant with options. Atomic: on any failure nothing is
    /// left behind (role, schema and registry row are created in one
    /// transaction).
    pub async fn provision_with(
        &self,
        slug: &TenantSlug,
        display_name: &str,
        options: ProvisionOptions,
    ) -> Result<Tenant, TenancyError> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(TenancyError::Config(
                "display name must be 1 to 200 characters".into(),
            ));
        }
        let started = Instant::now();
        let schema = slug.schema_name();
        let role = self.role_name(slug);
        let template = &self.inner.template;
        let settings = options
            .settings
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        if !settings.is_object() {
            return Err(TenancyError::Config(
                "settings must be a JSON object".into(),
            ));
        }
        let flags = serde_json::to_value(&options.feature_flags)
            .map_err(|e| TenancyError::Config(e.to_string()))?;
        let mut conn = self.conn().await?;
        let tenant = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                // Lock first, check after: in READ COMMITTED the check must be
                // a later statement to see a winner that committed while we
                // waited for the lock.
                // raw SQL: an advisory lock
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('rampart.provision'), hashtext($1))")
                    .bind::<Text, _>(slug.as_str())
                    .execute(conn)
                    .await?;
                // raw SQL: also asks the catalog (pg_namespace) for the schema name
                let taken: Exists = diesel::sql_query(
                    "SELECT EXISTS (SELECT 1 FROM platform.tenants WHERE slug = $1) \
                         OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2) AS exists",
                )
                .bind::<Text, _>(slug.as_str())
                .bind::<Text, _>(&schema)
                .get_result(conn)
                .await?;
                if taken.exists {
                    return Err(TenancyError::AlreadyExists(slug.to_string()));
                }
                // A spare built ahead of demand becomes this tenant's by two
                // renames; without one, the template's DDL runs now.
                let spare = crate::spares::claim(conn, template).await?;
                match &spare {
                    Some(spare) => spare.rename_to(conn, &schema, &role).await?,
                    None => self.build_schema(conn, &schema, &role).await?,
                }
                let elapsed_ms = started.elapsed().as_millis().to_string();
                let tenant = diesel::insert_into(tenants::table)
                    .values((
                        tenants::id.eq(Uuid::new_v4()),
                        tenants::slug.eq(slug.as_str()),
                        tenants::display_name.eq(display_name),
                        tenants::status.eq("active"),
                        tenants::schema_name.eq(&schema),
                        tenants::role_name.eq(&role),
                        tenants::is_canary.eq(options.canary),
                        tenants::settings.eq(&settings),
                        tenants::feature_flags.eq(&flags),
                    ))
                    .returning(TenantRow::as_returning())
                    .get_result::<TenantRow>(conn)
                    .await?
                    .into_tenant()?;
                diesel::insert_into(tenant_migrations::table)
                    .values((
                        tenant_migrations::tenant_id.eq(tenant.id),
                        tenant_migrations::version.eq(template.latest_version()),
                        tenant_migrations::checksum.eq(template.checksum()),
                        tenant_migrations::status.eq("ok"),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(tenant_usage::table)
                    .values(tenant_usage::tenant_id.eq(tenant.id))
                    .execute(conn)
                    .await?;
                NewTenantEvent {
                    tenant_id: Some(tenant.id),
                    slug: slug.as_str(),
                    event: "provisioned",
                    detail: serde_json::json!({"version": template.latest_version(), "ms": elapsed_ms, "spare": spare.is_some()}),
                    actor: options.actor.as_deref(),
                }
                .record(conn)
                .await?;
                Ok(tenant)
            })
            .await?;
        self.invalidate(&tenant.slug).await;
        Ok(tenant)
    }

    /// Drops `schema` with everything in it and then `role` (a tenant's or a
    /// spare's; names already validated).
    pub(crate) async fn drop_schema_and_role(
        conn: &mut diesel_async::AsyncPgConnection,
        schema: &str,
        role: &str,
    ) -> Result<(), TenancyError> {
        let (s, r) = (quote_ident(schema), quote_ident(role));
        // DDL: diesel has no statements for roles and schemas.
        conn.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; DROP OWNED BY {r}; DROP ROLE IF EXISTS {r};"
        ))
        .await?;
        Ok(())
    }

    /// Creates `role` and `schema` and fills the schema from the template
    /// (the baseline script in one round trip, checked against the
    /// template's fingerprint until one schema made by it matched), then
    /// locks its append-only tables down.
    pub(crate) async fn build_schema(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        schema: &str,
        role: &str,
    ) -> Result<(), TenancyError> {
        let baseline = &self.inner.baseline;
        let template = &self.inner.template;
        let (r, s) = (quote_ident(role), quote_ident(schema));
        // One round trip: role, schema, baseline and ledger (DDL, which
        // diesel has no statements for).
        let batch = format!(
            "CREATE ROLE {r} NOLOGIN; GRANT {r} TO CURRENT_USER; CREATE SCHEMA {s}; GRANT USAGE, CREATE ON SCHEMA {s} TO {r};\n\
             SELECT set_config('search_path', {sl}, true);\nSET LOCAL ROLE {r};\n{}\n{}",
            baseline.script,
            baseline.ledger_sql,
            sl = quote_literal(schema),
        );
        conn.batch_execute(&batch).await?;
        // Checked until one schema made by this script matched.
        let verified = &baseline.verified;
        if !std::sync::atomic::AtomicBool::load(verified, std::sync::atomic::Ordering::Relaxed) {
            if fingerprint(conn, schema).await? == baseline.fingerprint {
                verified.store(true, std::sync::atomic::Ordering::Relaxed);
            } else {
                // The renderer missed something of the template: replay
                // the migrations instead, then check again.
                tracing::warn!(%schema, "baseline fingerprint differs from the template; replaying migrations");
                conn.batch_execute(&format!(
                    "RESET ROLE; DROP SCHEMA {s} CASCADE; CREATE SCHEMA {s}; GRANT USAGE, CREATE ON SCHEMA {s} TO {r};\
                     SELECT set_config('search_path', {sl}, true); SET LOCAL ROLE {r}; {LEDGER_DDL}",
                    sl = quote_literal(schema)
                ))
                .await?;
                apply(conn, template.migrations().iter()).await?;
                if fingerprint(conn, schema).await? != baseline.fingerprint {
                    return Err(TenancyError::Migration {
                        version: template.latest_version().to_owned(),
                        message: "tenant schema does not match the template after replay".into(),
                    });
                }
            }
        }
        conn.batch_execute("RESET ROLE").await?;
        crate::append_only::lock_down(conn, schema, role).await?;
        Ok(())
    }
}
