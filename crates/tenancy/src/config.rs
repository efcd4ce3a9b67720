use std::collections::BTreeMap;
use std::fmt;

/// Configuration of the tenancy crate (one struct, loaded once; the server
/// composes it from file + environment).
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenancyConfig {
    /// PostgreSQL URL of the platform database (a role that may create roles
    /// and schemas). Never logged.
    pub database_url: String,
    /// TLS to PostgreSQL: `sslmode` and the root/client certificate files
    /// (each wins over the same libpq parameter of `database_url`; plaintext
    /// when neither says otherwise). Used by every connection of the pool
    /// and by the backup's COPY connections.
    pub tls: rampart_dbtls::PgTlsConfig,
    /// Maximum pooled connections.
    pub max_connections: usize,
    /// Connections older than this are closed when returned: per-connection
    /// catalog caches grow with the number of schemas a connection touched.
    pub connection_max_lifetime_secs: u64,
    /// How long to wait for a pooled connection.
    pub pool_wait_timeout_ms: u64,
    /// `statement_timeout` of every tenant transaction.
    pub statement_timeout_ms: u64,
    /// `lock_timeout` of every tenant transaction.
    pub lock_timeout_ms: u64,
    /// How soon a change to the tenant registry (status, schema, settings)
    /// made by another replica is seen: lifecycle changes made through this
    /// pool invalidate the cached row at once; every this often one query
    /// fingerprints the whole registry and drops the cache when it changed
    /// (rows are otherwise kept for minutes, however many tenants).
    pub tenant_cache_ttl_ms: u64,
    /// Tenants migrated at once by `migrate_all` (kept below the pool size).
    pub migrate_concurrency: usize,
    /// Tenant schemas kept built ahead of demand by
    /// [`crate::TenantPool::replenish_spares`], so that a provisioning
    /// renames one instead of creating ~140 relations (0: none; each costs
    /// a tenant schema's catalog footprint while it waits).
    pub spare_schemas: usize,
    /// Days a deactivated tenant's data is kept before it may be purged.
    pub default_retention_days: u32,
    /// Feature flags a tenant has unless its own flags say otherwise.
    pub default_feature_flags: BTreeMap<String, bool>,
    /// How long a tenant's typed settings are cached in memory. Changes made
    /// through this pool invalidate them at once; other replicas see them
    /// within this time.
    pub settings_cache_ttl_ms: u64,
    /// The platform's limits on tenant settings.
    pub settings_bounds: SettingsBounds,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            tls: rampart_dbtls::PgTlsConfig::default(),
            max_connections: 16,
            connection_max_lifetime_secs: 30 * 60,
            pool_wait_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            lock_timeout_ms: 5_000,
            tenant_cache_ttl_ms: 2_000,
            migrate_concurrency: 4,
            spare_schemas: 2,
            default_retention_days: 30,
            default_feature_flags: BTreeMap::new(),
            settings_cache_ttl_ms: 2_000,
            settings_bounds: SettingsBounds::default(),
        }
    }
}

impl TenancyConfig {
    /// The defaults on `database_url`, with at most `max_connections`
    /// pooled connections.
    pub fn new(database_url: impl Into<String>, max_connections: usize) -> Self {
        Self {
            database_url: database_url.into(),
            max_connections,
            ..Self::default()
        }
    }
}

impl fmt::Debug for TenancyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenancyConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("tls", &self.tls)
            .field("max_connections", &self.max_connections)
            .field(
                "connection_max_lifetime_secs",
                &self.connection_max_lifetime_secs,
            )
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("lock_timeout_ms", &self.lock_timeout_ms)
            .field("tenant_cache_ttl_ms", &self.tenant_cache_ttl_ms)
            .field("migrate_concurrency", &self.migrate_concurrency)
            .field("spare_schemas", &self.spare_schemas)
            .field("default_retention_days", &self.default_retention_days)
            .field("default_feature_flags", &self.default_feature_flags)
            .field("settings_cache_ttl_ms", &self.settings_cache_ttl_ms)
            .field("settings_bounds", &self.settings_bounds)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl TenancyConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::TenancyError> {
        let bad = |m: &str| Err(crate::TenancyError::Config(m.to_owned()));
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return bad("database_url must be a postgres:// URL");
        }
        if self.max_connections < 2 {
            return bad("max_connections must be at least 2");
        }
        if self.migrate_concurrency == 0 {
            return bad("migrate_concurrency must be at least 1");
        }
        if self.spare_schemas > 1_000 {
            return bad("spare_schemas must be at most 1000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:pw@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}

/// The platform's limits on tenant settings (`[database.settings_bounds]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsBounds {
    /// Shortest session lifetime.
    pub session_lifetime_min_secs: u64,
    /// Longest session lifetime.
    pub session_lifetime_max_secs: u64,
    /// Shortest refresh token lifetime.
    pub refresh_lifetime_min_secs: u64,
    /// Longest refresh token lifetime.
    pub refresh_lifetime_max_secs: u64,
    /// Longest refresh grace.
    pub refresh_grace_max_secs: u64,
    /// Smallest minimum password length a tenant may set.
    pub password_min_length_min: u32,
    /// Largest minimum password length a tenant may set.
    pub password_min_length_max: u32,
    /// Most e-mail domains in the registration allow-list.
    pub max_allowed_domains: usize,
}

impl Default for SettingsBounds {
    fn default() -> Self {
        Self {
            session_lifetime_min_secs: 5 * 60,
            session_lifetime_max_secs: 30 * 24 * 3600,
            refresh_lifetime_min_secs: 5 * 60,
            refresh_lifetime_max_secs: 90 * 24 * 3600,
            refresh_grace_max_secs: 60,
            password_min_length_min: 12,
            password_min_length_max: 128,
            max_allowed_domains: 100,
        }
    }
}
