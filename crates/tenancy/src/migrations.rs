//! The embedded migrations and the async runner that applies them.
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sha2::{Digest, Sha256};

use crate::TenancyError;
use crate::schema::__diesel_schema_migrations as ledger;

/// A migration as embedded by `build.rs`.
pub(crate) struct EmbeddedMigration {
    pub version: &'static str,
    pub name: &'static str,
    pub up_sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// One migration of the tenant template.
#[derive(Debug, Clone)]
pub struct TemplateMigration {
    /// Version (the digits of diesel's directory prefix), sortable as text.
    pub version: String,
    /// Name (the rest of the directory name).
    pub name: String,
    /// The SQL, unqualified: it runs with `search_path` = the tenant schema.
    pub up_sql: String,
    /// SHA-256 of `up_sql`, hex.
    pub checksum: String,
}

impl TemplateMigration {
    /// A migration from its parts.
    pub fn new(
        version: impl Into<String>,
        name: impl Into<String>,
        up_sql: impl Into<String>,
    ) -> Self {
        let up_sql = up_sql.into();
        let checksum = hex::encode(Sha256::digest(up_sql.as_bytes()));
        Self {
            version: version.into(),
            name: name.into(),
            up_sql,
            checksum,
        }
    }
}

/// An ordered set of tenant template migrations. The default is the set
/// embedded from `migrations/tenant`; embedders may append their own.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    migrations: Arc<[TemplateMigration]>,
}

impl Default for MigrationSet {
    fn default() -> Self {
        Self::embedded_tenant()
    }
}

impl MigrationSet {
    /// The tenant template embedded in this build.
    pub fn embedded_tenant() -> Self {
        Self::from_embedded(TENANT)
    }

    fn from_embedded(list: &[EmbeddedMigration]) -> Self {
        Self {
            migrations: list
                .iter()
                .map(|m| TemplateMigration::new(m.version, m.name, m.up_sql))
                .collect(),
        }
    }

    /// This set with more migrations appended (they must sort after it).
    pub fn with(
        mut self,
        extra: impl IntoIterator<Item = TemplateMigration>,
    ) -> Result<Self, TenancyError> {
        let mut all: Vec<TemplateMigration> = self.migrations.iter().cloned().collect();
        for m in extra {
            if all.last().is_some_and(|last| last.version >= m.version) {
                return Err(TenancyError::Config(format!(
                    "migration {} does not sort after the previous one",
                    m.version
                )));
            }
            all.push(m);
        }
        self.migrations = all.into();
        Ok(self)
    }

    /// This set up to and including `version` (digits only, as in the ledger:
    /// `20261203100000`), e.g. to build a tenant as an older release did,
    /// then migrate it.
    pub fn up_to(&self, version: &str) -> Self {
        Self {
            migrations: self
                .migrations
                .iter()
                .filter(|m| m.version.as_str() <= version)
                .cloned()
                .collect(),
        }
    }

    /// The migrations, oldest first.
    pub fn migrations(&self) -> &[TemplateMigration] {
        &self.migrations
    }

    /// The newest version ("" for an empty set).
    pub fn latest_version(&self) -> &str {
        self.migrations
            .last()
            .map(|m| m.version.as_str())
            .unwrap_or("")
    }

    /// A checksum over every migration of the set.
    pub fn checksum(&self) -> String {
        let mut h = Sha256::new();
        for m in self.migrations.iter() {
            h.update(m.version.as_bytes());
            h.update(m.checksum.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The migrations newer than the versions in `applied`.
    pub(crate) fn pending<'a>(
        &'a self,
        applied: &[String],
    ) -> impl Iterator<Item = &'a TemplateMigration> {
        self.migrations
            .iter()
            .filter(move |m| !applied.contains(&m.version))
    }
}

/// diesel's ledger table, so the diesel CLI understands a tenant schema.
pub(crate) const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\
     version varchar(50) PRIMARY KEY NOT NULL, run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);";

/// Versions recorded in the ledger of the schema on the search path.
pub(crate) async fn applied_versions(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<String>, TenancyError> {
    Ok(ledger::table
        .select(ledger::version)
        .order(ledger::version)
        .load(conn)
        .await?)
}

/// Applies `pending` to the schema on the search path (inside the caller's
/// transaction, as the caller's current role), recording each in the ledger.
pub(crate) async fn apply<'a>(
    conn: &mut AsyncPgConnection,
    pending: impl Iterator<Item = &'a TemplateMigration>,
) -> Result<Vec<String>, TenancyError> {
    let mut done = Vec::new();
    for m in pending {
        conn.batch_execute(&m.up_sql)
            .await
            .map_err(|e| TenancyError::Migration {
                version: m.version.clone(),
                message: e.to_string(),
            })?;
        diesel::insert_into(ledger::table)
            .values(ledger::version.eq(&m.version))
            .execute(conn)
            .await?;
        done.push(m.version.clone());
    }
    Ok(done)
}

/// Brings the `platform` schema up to date (under an advisory lock, so
/// replicas starting together apply each migration once).
pub(crate) async fn migrate_platform(conn: &mut AsyncPgConnection) -> Result<(), TenancyError> {
    use diesel_async::AsyncConnection;
    let set = MigrationSet::from_embedded(PLATFORM);
    conn.transaction::<_, TenancyError, _>(async |conn| {
        conn.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('rampart.platform.migrate'));\
             CREATE SCHEMA IF NOT EXISTS platform;\
             SELECT set_config('search_path', 'platform', true);",
        )
        .await?;
        conn.batch_execute(LEDGER_DDL).await?;
        let applied = applied_versions(conn).await?;
        apply(conn, set.pending(&applied)).await?;
        Ok(())
    })
    .await
}
