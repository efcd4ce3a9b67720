//! # rampart-tenancy
//!
//! Schema-per-tenant multi-tenancy on PostgreSQL: a tenant registry, a
//! template of SQL migrations that every tenant schema gets, connections
//! routed to exactly one tenant, lifecycle (active, suspended, deactivated
//! with retention, purged), per-tenant settings and feature flags, usage and
//! health — as a plain async API over diesel-async and deadpool.
//!
//! ```no_run
//! use diesel::prelude::*;
//! use diesel_async::RunQueryDsl;
//! use rampart_tenancy::{TenancyConfig, TenantPool};
//!
//! // Unqualified by schema: the search_path picks the tenant's.
//! diesel::table! {
//!     users (id) {
//!         id -> Uuid,
//!         email -> Text,
//!     }
//! }
//!
//! # async fn demo() -> Result<(), rampart_tenancy::TenancyError> {
//! let pool = TenantPool::connect(TenancyConfig {
//!     database_url: "postgres://postgres@127.0.0.1:5432/rampart".into(),
//!     ..TenancyConfig::default()
//! })
//! .await?;
//! let slug = rampart_tenancy::TenantSlug::parse("acme")?;
//! let acme = pool.provision(&slug, "Acme Capital").await?;
//! let users: i64 = pool
//!     .with_tenant(&acme.slug, async |conn| {
//!         // Runs as the tenant's role, with search_path = its schema only.
//!         diesel::insert_into(users::table)
//!             .values(users::email.eq("ada@acme.test"))
//!             .execute(conn)
//!             .await?;
//!         let n: i64 = users::table.count().get_result(conn).await?;
//!         Ok::<_, rampart_tenancy::TenancyError>(n)
//!     })
//!     .await?;
//! assert_eq!(users, 1);
//! # Ok(()) }
//! ```
//!
//! What needs no database: a tenant is named by a [`TenantSlug`], checked
//! once where it enters, and the template every tenant schema gets is
//! embedded in the build.
//!
//! ```
//! use rampart_tenancy::{MigrationSet, TenantSlug};
//!
//! let acme = TenantSlug::parse("acme")?;
//! assert_eq!(acme.schema_name(), "tenant_acme");
//! // Not a schema name, nor a way into another schema.
//! assert!(TenantSlug::parse("Acme; DROP SCHEMA platform").is_err());
//! assert!(TenantSlug::parse("public").is_err());
//!
//! let template = MigrationSet::embedded_tenant();
//! assert!(!template.migrations().is_empty());
//! assert_eq!(template.latest_version().len(), 14); // YYYYMMDDhhmmss
//! # Ok::<(), rampart_tenancy::TenancyError>(())
//! ```
//!
//! ## How it works
//! - **Registry** (`platform` schema): `tenants`, `tenant_migrations` (one
//!   row per tenant: version, checksum, status, error), `tenant_events`.
//! - **Provisioning** ([`TenantPool::provision`]) runs in one transaction under
//!   a per-slug advisory lock: create a NOLOGIN role, a schema it owns, then
//!   the *baseline* — the DDL of the template schema `tenant_template`
//!   (migrated by the same runner as every tenant) rendered from the catalog
//!   in one batch — plus the migration ledger, then compares a catalog
//!   fingerprint of the new schema with the template's. If they ever differ
//!   (a template feature the renderer does not know), it falls back to
//!   replaying the migrations, so the result is always the template.
//! - **Routing** ([`TenantPool::with_tenant`]) refuses unknown, suspended,
//!   deactivated and purged tenants before any tenant SQL, then runs the work
//!   in a transaction that starts with one statement setting `role`,
//!   `search_path` (the tenant schema only — never `public`),
//!   `statement_timeout` and `lock_timeout` with `set_config(..., true)`: all
//!   transaction-local, so nothing leaks into the pool and it works behind
//!   PgBouncer in transaction mode. The tenant role has no rights on other
//!   schemas, so even explicit cross-schema SQL fails with a permission error.
//!   The role boundary stops application SQL that strays (a wrong schema
//!   name, a missing tenant filter); it is not a sandbox for hostile SQL: code
//!   running inside `with_tenant` is trusted not to issue `SET ROLE` itself.
//! - **Migrations** ([`TenantPool::migrate_all`]) find the tenants behind in
//!   one query, migrate each in its own transaction under a per-tenant
//!   advisory lock with bounded parallelism, canaries first, and report.
//!
//! The migrations are embedded at build time from this crate's
//! `migrations/platform` and `migrations/tenant` (diesel's directory format,
//! so the diesel CLI can read them). They are applied by this crate's own async runner rather than
//! `diesel_migrations`' harness, because the harness blocks the runtime
//! thread (it panics on current-thread runtimes such as actix-web's) and
//! because the baseline needs the migrations' SQL text.
//!
//! ## Scaling out with Citus
//! A deployment that outgrows one PostgreSQL can distribute tenant schemas
//! over a Citus cluster with schema-based sharding and no code change:
//! set `citus.enable_schema_based_sharding = on` before provisioning (each new
//! schema becomes a distributed schema placed on one node), or move existing
//! ones with `SELECT citus_schema_distribute('tenant_acme')`. This crate keeps
//! to what that mode supports: tenant tables never reference the `platform`
//! schema (no cross-schema foreign keys — the registry lives on the
//! coordinator), every statement of a tenant transaction touches one tenant
//! schema, identity columns instead of `serial` sequences shared across
//! schemas, and the routing uses only transaction-local settings, which Citus
//! forwards to the node that holds the schema.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod activity;
mod append_only;
mod audit;
mod backup;
mod baseline;
mod changes;
mod config;
mod error;
mod lifecycle;
mod migrate;
mod migrations;
mod pool;
mod provision;
pub use provision::ProvisionOptions;
mod schema;
mod settings;
mod settings_model;
mod slug;
mod spares;
pub use spares::{SPARE_STALE_AFTER, SpareReport};
mod tenant_settings;
mod usage;

pub use activity::{Due, TableActivity};
pub use audit::AdminAction;
pub use backup::{
    BACKUP_FORMAT_VERSION, BackupManifest, BackupSequence, BackupTable, ExportReport,
    RestoreOptions, RestoreReport, read_backup_manifest,
};
pub use changes::{ChangeFeed, Freshness, snapshot_horizon};
pub use config::{SettingsBounds, TenancyConfig};
pub use error::{TenancyError, is_connection_lost, is_permission_denied};
pub use lifecycle::TenantEvent;
pub use migrate::{MigrationOutcome, MigrationProgress, MigrationReport};
pub use migrations::{MigrationSet, TemplateMigration};
pub use pool::{Tenant, TenantPool, TenantStatus};
pub use settings_model::{
    PasswordPolicy, RegistrationMode, RegistrationPolicy, TenantSettings, UpstreamLinking,
};
pub use slug::TenantSlug;
pub use usage::{TableUsage, TenantHealth, TenantUsage};

/// Re-exported so users name the same connection type as this crate.
pub use diesel_async::AsyncPgConnection;
