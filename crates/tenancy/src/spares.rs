//! Spare tenant schemas: built from the template ahead of demand, so that a
//! provisioning renames one (schema and role, two catalog updates) instead
//! of running the template's DDL, ~140 relations, while the caller waits.
//!
//! [`TenantPool::replenish_spares`] keeps `TenancyConfig::spare_schemas`
//! of them for the running template and drops those of an older template
//! version once they are [`SPARE_STALE_AFTER`] old. During a rolling upgrade the
//! older replicas still provision from their spares, and the newer ones
//! leave them alone (before, each build dropped the other's spares and
//! built its own again, every run of the job); the reference server calls
//! it from a job. A provisioning that
//! finds none builds the schema itself, as it always did. Spares are
//! registered in `platform.tenant_spares`; their schemas are named
//! `spare_<32 hex>` (the `spare_` prefix is reserved for slugs), owned and
//! locked down exactly like a tenant's, and no tenant is routed to them.
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use crate::schema::tenant_spares;
use crate::slug::quote_ident;
use crate::{MigrationSet, TenancyError, TenantPool};

/// How old a spare of an older template version must be before a
/// replenish drops it: longer than a rolling upgrade, during which older
/// replicas still take them.
pub const SPARE_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What one [`TenantPool::replenish_spares`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpareReport {
    /// Spares built for the running template.
    pub created: usize,
    /// Spares of an older template version dropped.
    pub dropped: usize,
    /// Spares of the running template now waiting.
    pub ready: usize,
}

/// A spare taken by a provisioning's transaction (its registry row is
/// deleted in that transaction, so a rollback gives it back).
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tenant_spares)]
pub(crate) struct Spare {
    schema_name: String,
    role_name: String,
}

impl Spare {
    /// Makes the spare `schema`, owned by `role` (names already validated).
    pub(crate) async fn rename_to(
        &self,
        conn: &mut AsyncPgConnection,
        schema: &str,
        role: &str,
    ) -> Result<(), TenancyError> {
        // DDL: diesel has no statements for schemas and roles.
        conn.batch_execute(&format!(
            "ALTER SCHEMA {} RENAME TO {}; ALTER ROLE {} RENAME TO {};",
            quote_ident(&self.schema_name),
            quote_ident(schema),
            quote_ident(&self.role_name),
            quote_ident(role),
        ))
        .await?;
        Ok(())
    }
}

/// Takes the oldest spare of `template`, if any, inside the caller's
/// transaction (skipping spares other provisionings hold).
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    template: &MigrationSet,
) -> Result<Option<Spare>, TenancyError> {
    let (version, checksum) = (template.latest_version(), template.checksum());
    let of_template = tenant_spares::version
        .eq(version)
        .and(tenant_spares::checksum.eq(checksum));
    take(conn, of_template).await
}

/// Takes the oldest spare that `which` selects: locks it, skipping those
/// other transactions hold, and deletes its registry row in the caller's
/// transaction (a rollback gives it back).
async fn take<W>(conn: &mut AsyncPgConnection, which: W) -> Result<Option<Spare>, TenancyError>
where
    W: diesel::expression::BoxableExpression<
            tenant_spares::table,
            diesel::pg::Pg,
            SqlType = diesel::sql_types::Bool,
        > + diesel::expression::NonAggregate
        + diesel::query_builder::QueryId
        + Send,
{
    let spare = tenant_spares::table
        .filter(which)
        .order(tenant_spares::created_at)
        .limit(1)
        .for_update()
        .skip_locked()
        .select(Spare::as_select())
        .first(conn)
        .await
        .optional()?;
    if let Some(spare) = &spare {
        diesel::delete(tenant_spares::table.find(&spare.schema_name))
            .execute(conn)
            .await?;
    }
    Ok(spare)
}

/// How many spares of the template `version` / `checksum` wait.
async fn ready(
    conn: &mut AsyncPgConnection,
    version: &str,
    checksum: &str,
) -> Result<i64, TenancyError> {
    Ok(tenant_spares::table
        .filter(tenant_spares::version.eq(version))
        .filter(tenant_spares::checksum.eq(checksum))
        .count()
        .get_result(conn)
        .await?)
}

impl TenantPool {
    /// Builds spare schemas until `TenancyConfig::spare_schemas` of the
    /// running template wait, after dropping those of an older template
    /// version built more than [`SPARE_STALE_AFTER`] ago. Those of a newer version (a newer build's, in a rolling
    /// upgrade) are left alone, as are those of the same version with
    /// another set of migrations (no order tells which build is newer):
    /// at most `spare_schemas` each, until a newer version drops them. Each spare is its own transaction;
    /// replicas replenishing at once do not overshoot (an advisory lock
    /// serialises the count and the build).
    pub async fn replenish_spares(&self) -> Result<SpareReport, TenancyError> {
        let template = &self.inner.template;
        let (version, checksum) = (template.latest_version().to_owned(), template.checksum());
        let mut report = SpareReport::default();
        let mut conn = self.conn().await?;
        while drop_one_stale(&mut conn, &version).await? {
            report.dropped += 1;
        }
        let wanted = self.inner.config.spare_schemas as i64;
        while self
            .build_one(&mut conn, &version, &checksum, wanted)
            .await?
        {
            report.created += 1;
        }
        report.ready = ready(&mut conn, &version, &checksum).await? as usize;
        Ok(report)
    }

    /// Builds one spare of the template `version` / `checksum` in a
    /// transaction of its own, unless `wanted` wait already; whether it did.
    async fn build_one(
        &self,
        conn: &mut AsyncPgConnection,
        version: &str,
        checksum: &str,
        wanted: i64,
    ) -> Result<bool, TenancyError> {
        conn.transaction::<_, TenancyError, _>(async |conn| {
            // raw SQL: an advisory lock
            conn.batch_execute("SELECT pg_advisory_xact_lock(hashtext('rampart.spares'))")
                .await?;
            if ready(conn, version, checksum).await? >= wanted {
                return Ok(false);
            }
            let id = Uuid::new_v4().simple().to_string();
            let schema = format!("spare_{id}");
            let role = format!("{}_spare_{id}", self.inner.role_prefix);
            self.build_schema(conn, &schema, &role).await?;
            diesel::insert_into(tenant_spares::table)
                .values((
                    tenant_spares::schema_name.eq(&schema),
                    tenant_spares::role_name.eq(&role),
                    tenant_spares::version.eq(version),
                    tenant_spares::checksum.eq(checksum),
                ))
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
    }
}

/// Drops one spare of a template version older than `version` (versions
/// are timestamps of one width: text order is time order) built more than
/// [`SPARE_STALE_AFTER`] ago, in a transaction of its own (skipping those another
/// replica holds); whether there was one.
async fn drop_one_stale(conn: &mut AsyncPgConnection, version: &str) -> Result<bool, TenancyError> {
    let built_before = chrono::Utc::now()
        - chrono::Duration::from_std(SPARE_STALE_AFTER).unwrap_or(chrono::Duration::zero());
    let stale = tenant_spares::version
        .lt(version)
        .and(tenant_spares::created_at.lt(built_before));
    conn.transaction::<_, TenancyError, _>(async |conn| {
        let Some(spare) = take(conn, stale).await? else {
            return Ok(false);
        };
        TenantPool::drop_schema_and_role(conn, &spare.schema_name, &spare.role_name).await?;
        Ok(true)
    })
    .await
}
