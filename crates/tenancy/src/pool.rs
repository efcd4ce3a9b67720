//! The tenant-aware connection pool and the routing of work to one tenant.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::baseline::Baseline;
use crate::migrations::MigrationSet;
use crate::schema::tenants;
use crate::slug::quote_literal;
use crate::{TenancyConfig, TenancyError, TenantSlug};

/// Where a tenant is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Being created (never visible outside the provisioning transaction).
    Provisioning,
    /// Serving.
    Active,
    /// Temporarily refused; data intact.
    Suspended,
    /// Refused; data kept until the retention deadline.
    Deactivated,
    /// Schema and role dropped; the registry row is a tombstone.
    Purged,
}

impl TenantStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deactivated => "deactivated",
            Self::Purged => "purged",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deactivated" => Self::Deactivated,
            "purged" => Self::Purged,
            _ => Self::Provisioning,
        }
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant's registry row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    /// Stable id.
    pub id: Uuid,
    /// Validated slug.
    pub slug: TenantSlug,
    /// Human name.
    pub display_name: String,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Its schema.
    pub schema_name: String,
    /// Its NOLOGIN role, owner of the schema.
    pub role_name: String,
    /// Migrated first by `migrate_all`.
    pub is_canary: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// When suspended (if suspended).
    pub suspended_at: Option<DateTime<Utc>>,
    /// When deactivated (if deactivated).
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Until when a deactivated tenant's data is kept.
    pub retention_deadline: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TenantRow {
    id: Uuid,
    slug: String,
    display_name: String,
    status: String,
    schema_name: String,
    role_name: String,
    is_canary: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    suspended_at: Option<DateTime<Utc>>,
    deactivated_at: Option<DateTime<Utc>>,
    retention_deadline: Option<DateTime<Utc>>,
}

impl TenantRow {
    pub(crate) fn into_tenant(self) -> Result<Tenant, TenancyError> {
        Ok(Tenant {
            id: self.id,
            slug: TenantSlug::parse(&self.slug)?,
            display_name: self.display_name,
            status: TenantStatus::parse(&self.status),
            schema_name: self.schema_name,
            role_name: self.role_name,
            is_canary: self.is_canary,
            created_at: self.created_at,
            updated_at: self.updated_at,
            suspended_at: self.suspended_at,
            deactivated_at: self.deactivated_at,
            retention_deadline: self.retention_deadline,
        })
    }
}

/// A pool of PostgreSQL connections that runs work for one tenant at a time.
///
/// Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct TenantPool {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool<AsyncPgConnection>,
    /// Makes the pool's connections and the backup's COPY clients (TLS
    /// settings resolved, certificate files loaded once).
    pub(crate) connector: rampart_dbtls::PgConnector,
    pub(crate) config: TenancyConfig,
    pub(crate) template: MigrationSet,
    pub(crate) baseline: Baseline,
    pub(crate) role_prefix: String,
    /// Registry rows by slug, for `tenant_cache_ttl_ms`. An async cache so
    /// concurrent misses for one tenant share one registry read.
    cache: moka::future::Cache<String, Arc<Tenant>>,
    /// Typed settings by slug, for `settings_cache_ttl_ms`.
    pub(crate) settings_cache:
        moka::future::Cache<String, Arc<crate::settings_model::TenantSettings>>,
    /// Checkouts since the last flush to `platform.tenant_usage`.
    checkouts: RwLock<HashMap<Uuid, Arc<AtomicU64>>>,
    /// The last look at the registry's fingerprint (see
    /// [`TenantPool::watch_registry`]).
    registry_check: tokio::sync::Mutex<RegistryCheck>,
}

/// When the registry was last fingerprinted, and what it was.
#[derive(Default)]
struct RegistryCheck {
    at: Option<std::time::Instant>,
    fingerprint: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct RegistryFingerprint {
    #[diesel(sql_type = diesel::sql_types::Text)]
    fingerprint: String,
}

/// How long a registry row or a tenant's settings stay cached while the
/// registry does not change. Every `tenant_cache_ttl_ms` one query
/// fingerprints the whole registry (the `xmin` of every row: any insert,
/// update or delete changes it, whatever order transactions commit in) and a
/// change drops every cached entry; so a change made by another replica is
/// seen within the TTL, and a server spread over 10,000 tenants reads the
/// registry once per TTL instead of once per tenant per TTL.
const ENTRY_LIFETIME: Duration = Duration::from_secs(300);

impl std::fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPool")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

diesel::define_sql_function! {
    /// PostgreSQL's `current_database()`.
    fn current_database() -> diesel::sql_types::Text;
}

impl TenantPool {
    /// Connects, brings the platform registry up to date and prepares the
    /// tenant template (migrated, rendered to a baseline, fingerprinted).
    pub async fn connect(config: TenancyConfig) -> Result<Self, TenancyError> {
        Self::connect_with_template(config, MigrationSet::embedded_tenant()).await
    }

    /// Like [`TenantPool::connect`] with a template of your own (e.g. the
    /// embedded one plus your migrations).
    pub async fn connect_with_template(
        config: TenancyConfig,
        template: MigrationSet,
    ) -> Result<Self, TenancyError> {
        config.validate()?;
        let connector = rampart_dbtls::PgConnector::new(&config.database_url, &config.tls)?;
        let manager = connector.diesel_manager();
        let max_lifetime = Duration::from_secs(config.connection_max_lifetime_secs);
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .wait_timeout(Some(Duration::from_millis(config.pool_wait_timeout_ms)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool::Runtime::Tokio1)
            .pre_recycle(Hook::sync_fn(move |_conn, metrics| {
                if metrics.age() > max_lifetime {
                    Err(HookError::Message(
                        "connection reached its maximum lifetime".into(),
                    ))
                } else {
                    Ok(())
                }
            }))
            .build()
            .map_err(|e| TenancyError::Config(e.to_string()))?;

        let mut conn = get(&pool).await?;
        crate::migrations::migrate_platform(&mut conn).await?;
        let db: String = diesel::select(current_database())
            .get_result(&mut *conn)
            .await?;
        // Roles are cluster-wide, schemas per database: a per-database prefix
        // keeps two databases of one cluster from sharing tenant roles.
        let role_prefix = format!("r{}", &hex::encode(Sha256::digest(db.as_bytes()))[..8]);
        let baseline = crate::baseline::prepare(&mut conn, &template, &role_prefix).await?;
        drop(conn);

        let lifetime = |ttl_ms: u64| ENTRY_LIFETIME.max(Duration::from_millis(ttl_ms));
        let cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(lifetime(config.tenant_cache_ttl_ms))
            .build();
        let settings_cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(lifetime(config.settings_cache_ttl_ms))
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                settings_cache,
                pool,
                connector,
                config,
                template,
                baseline,
                role_prefix,
                cache,
                checkouts: RwLock::new(HashMap::new()),
                registry_check: tokio::sync::Mutex::new(RegistryCheck::default()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TenancyConfig {
        &self.inner.config
    }

    /// The tenant template in use.
    pub fn template(&self) -> &MigrationSet {
        &self.inner.template
    }

    /// The baseline every new tenant schema is created from: the template's
    /// DDL and seed rows rendered from the catalog (for inspection).
    pub fn baseline_script(&self) -> &str {
        &self.inner.baseline.script
    }

    /// The underlying pool (platform-level work: registry queries, health).
    pub fn raw_pool(&self) -> &Pool<AsyncPgConnection> {
        &self.inner.pool
    }

    /// Pool state (size, available, waiting) for metrics.
    pub fn pool_status(&self) -> deadpool::Status {
        self.inner.pool.status()
    }

    pub(crate) async fn conn(&self) -> Result<Object<AsyncPgConnection>, TenancyError> {
        get(&self.inner.pool).await
    }

    pub(crate) fn role_name(&self, slug: &TenantSlug) -> String {
        format!("{}_{}", self.inner.role_prefix, slug.as_str())
    }

    /// Looks a tenant up in the registry (any status), bypassing the cache.
    pub async fn tenant(&self, slug: &TenantSlug) -> Result<Tenant, TenancyError> {
        let mut conn = self.conn().await?;
        load_tenant(&mut conn, slug).await
    }

    /// All tenants, oldest first.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenancyError> {
        let mut conn = self.conn().await?;
        let rows: Vec<TenantRow> = tenants::table
            .select(TenantRow::as_select())
            .order((tenants::created_at, tenants::slug))
            .load(&mut *conn)
            .await?;
        rows.into_iter().map(TenantRow::into_tenant).collect()
    }

    /// The active tenants' slugs, oldest first: what a scheduled job that
    /// works tenant by tenant goes through.
    pub async fn active_slugs(&self) -> Result<Vec<TenantSlug>, TenancyError> {
        let rows: Vec<String> = tenants::table
            .filter(tenants::status.eq(crate::TenantStatus::Active.as_str()))
            .order((tenants::created_at, tenants::slug))
            .select(tenants::slug)
            .load(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|s| TenantSlug::parse(s)).collect()
    }

    pub(crate) async fn invalidate(&self, slug: &TenantSlug) {
        self.inner.cache.invalidate(slug.as_str()).await;
    }

    pub(crate) async fn invalidate_str(&self, slug: &str) {
        self.inner.cache.invalidate(slug).await;
    }

    /// Drops every cached registry row and settings entry when the
    /// registry changed since the last look, looking at most once per
    /// `tenant_cache_ttl_ms` (or `settings_cache_ttl_ms`, the shorter): one
    /// query for all tenants (see [`ENTRY_LIFETIME`]). A caller that finds
    /// another one looking goes on with the cache as it is.
    pub(crate) async fn watch_registry(&self) {
        let config = &self.inner.config;
        let every = Duration::from_millis(
            config
                .tenant_cache_ttl_ms
                .min(config.settings_cache_ttl_ms)
                .max(1),
        );
        let Ok(mut check) = self.inner.registry_check.try_lock() else {
            return;
        };
        if check.at.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        check.at = Some(std::time::Instant::now());
        let Ok(mut conn) = self.conn().await else {
            return;
        };
        // raw SQL: `xmin` is a system column, not in the diesel schema
        let now: Result<RegistryFingerprint, _> = diesel::sql_query(
            "SELECT md5(coalesce(string_agg(xmin::text, ',' ORDER BY id), '')) AS fingerprint \
             FROM platform.tenants",
        )
        .get_result(&mut *conn)
        .await;
        if let Ok(now) = now
            && check.fingerprint.as_deref() != Some(now.fingerprint.as_str())
        {
            self.inner.cache.invalidate_all();
            self.inner.settings_cache.invalidate_all();
            check.fingerprint = Some(now.fingerprint);
        }
    }

    /// The tenant if it may serve requests; the refusal otherwise. No tenant
    /// SQL runs before this passes.
    pub async fn active_tenant(&self, slug: &TenantSlug) -> Result<Arc<Tenant>, TenancyError> {
        self.watch_registry().await;
        let cached = self
            .inner
            .cache
            .optionally_get_with(slug.as_str().to_owned(), async {
                let mut conn = self.conn().await.ok()?;
                load_tenant(&mut conn, slug).await.ok().map(Arc::new)
            })
            .await;
        let tenant = match cached {
            Some(t) => t,
            // Not cached: read again (uncoalesced) for the typed error
            // (unknown tenant, database unavailable, …).
            None => {
                let mut conn = self.conn().await?;
                Arc::new(load_tenant(&mut conn, slug).await?)
            }
        };
        match tenant.status {
            TenantStatus::Active => Ok(tenant),
            TenantStatus::Suspended => Err(TenancyError::Suspended(slug.to_string())),
            TenantStatus::Deactivated => Err(TenancyError::Deactivated(slug.to_string())),
            TenantStatus::Purged => Err(TenancyError::Purged(slug.to_string())),
            TenantStatus::Provisioning => Err(TenancyError::NotFound(slug.to_string())),
        }
    }

    /// Runs `work` for one tenant: in a transaction, as the tenant's role,
    /// with `search_path` = the tenant's schema only, and the configured
    /// statement and lock timeouts — all set in one statement with
    /// `set_config(..., true)`, so they end with the transaction. Commits when
    /// `work` returns `Ok`, rolls back otherwise.
    ///
    /// Unknown, suspended, deactivated and purged tenants are refused before
    /// any SQL runs for them.
    pub async fn with_tenant<T, E, F>(&self, slug: &TenantSlug, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
        E: From<TenancyError>,
    {
        let tenant = self.active_tenant(slug).await?;
        self.run_in_schema(&tenant, work).await
    }

    #[tracing::instrument(
        level = "debug",
        name = "db.transaction",
        skip_all,
        fields(otel.kind = "client", db.system.name = "postgresql", tenant = %tenant.slug)
    )]
    pub(crate) async fn run_in_schema<T, E, F>(&self, tenant: &Tenant, work: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
        E: From<TenancyError>,
    {
        let mut conn = self.conn().await?;
        self.count_checkout(tenant.id);
        let conn: &mut AsyncPgConnection = &mut conn;
        // BEGIN and the routing in one round trip. The names come from the
        // registry (slug-derived, validated) and are quoted as literals.
        let begin = format!(
            "BEGIN; SELECT set_config('role', {}, true), set_config('search_path', {}, true), \
             set_config('statement_timeout', '{}ms', true), set_config('lock_timeout', '{}ms', true)",
            quote_literal(&tenant.role_name),
            quote_literal(&tenant.schema_name),
            self.inner.config.statement_timeout_ms,
            self.inner.config.lock_timeout_ms,
        );
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, &begin).await {
            // BEGIN may have run while the routing failed (a role dropped by
            // a concurrent purge): never hand back a connection mid-transaction.
            let _ = diesel_async::SimpleAsyncConnection::batch_execute(conn, "ROLLBACK").await;
            return Err(TenancyError::from(e).into());
        }
        match work(conn).await {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(conn)
                    .await
                    .map_err(TenancyError::from)?;
                Ok(value)
            }
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(conn).await;
                Err(e)
            }
        }
    }

    fn count_checkout(&self, tenant: Uuid) {
        if let Ok(map) = self.inner.checkouts.read()
            && let Some(counter) = map.get(&tenant)
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut map) = self.inner.checkouts.write() {
            map.entry(tenant)
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds the checkouts counted in memory since the last flush to
    /// `platform.tenant_usage` (for a periodic job; several replicas add
    /// up). Returns how many tenants were updated.
    pub async fn flush_usage(&self) -> Result<usize, TenancyError> {
        let pending: Vec<(Uuid, u64)> = match self.inner.checkouts.read() {
            Ok(map) => map
                .iter()
                .map(|(id, c)| (*id, c.swap(0, Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            Err(_) => Vec::new(),
        };
        if pending.is_empty() {
            return Ok(0);
        }
        let (ids, counts): (Vec<Uuid>, Vec<i64>) = pending
            .iter()
            .map(|(id, n)| (*id, i64::try_from(*n).unwrap_or(i64::MAX)))
            .unzip();
        // raw SQL: one UPDATE joined to unnest() of the two arrays (every
        // tenant in one statement; 10,000 tenants were 10,000 round trips)
        diesel::sql_query(
            "UPDATE platform.tenant_usage u \
             SET checkouts = u.checkouts + p.n, updated_at = now() \
             FROM unnest($1::uuid[], $2::bigint[]) AS p (id, n) WHERE u.tenant_id = p.id",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&counts)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(pending.len())
    }

    /// Connection checkouts made for a tenant by this pool and not yet
    /// flushed with [`TenantPool::flush_usage`].
    pub fn checkouts(&self, tenant: Uuid) -> u64 {
        self.inner
            .checkouts
            .read()
            .ok()
            .and_then(|m| {
                m.get(&tenant)
                    .map(|c| AtomicU64::load(c, Ordering::Relaxed))
            })
            .unwrap_or(0)
    }
}

#[tracing::instrument(level = "debug", name = "db.pool.checkout", skip_all)]
pub(crate) async fn get(
    pool: &Pool<AsyncPgConnection>,
) -> Result<Object<AsyncPgConnection>, TenancyError> {
    pool.get()
        .await
        .map_err(|e| TenancyError::Pool(e.to_string()))
}

#[tracing::instrument(
    level = "debug",
    name = "db.query",
    skip_all,
    fields(otel.kind = "client", db.system.name = "postgresql", db.query.summary = "SELECT tenants")
)]
pub(crate) async fn load_tenant(
    conn: &mut AsyncPgConnection,
    slug: &TenantSlug,
) -> Result<Tenant, TenancyError> {
    let row: Option<TenantRow> = tenants::table
        .filter(tenants::slug.eq(slug.as_str()))
        .select(TenantRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.ok_or_else(|| TenancyError::NotFound(slug.to_string()))?
        .into_tenant()
}
