//! The server's one typed configuration: defaults ← TOML file ← environment
//! (`RAMPART_…`, `__` between levels, e.g. `RAMPART_DATABASE__MAX_CONNECTIONS=32`),
//! validated at start with a message for every bad value.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rampart_tenancy::TenancyConfig;
use serde::{Deserialize, Serialize};

use crate::tls::TlsFiles;
use rampart_ratelimit::RateLimitConfig;
use rampart_vault::VaultConfig;

/// Development (embedded defaults allowed) or production (secrets from Vault only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Dev secrets and plain-environment configuration are allowed.
    #[default]
    Dev,
    /// Secrets (database URL, keys) come from Vault; AppRole auth.
    Production,
}

/// HTTP behaviour common to both listeners.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted JSON body.
    pub json_body_limit_bytes: usize,
    /// Largest accepted upload (CSV imports).
    pub upload_limit_bytes: usize,
    /// Time to read a request's head before the connection is dropped.
    pub client_request_timeout_ms: u64,
    /// Keep-alive.
    pub keep_alive_secs: u64,
    /// Origins allowed by CORS (exact match). Empty: no cross-origin access.
    pub cors_allowed_origins: Vec<String>,
    /// Worker threads per listener (0: number of cores).
    pub workers: usize,
    /// On stop, how long in-flight requests and open connections may take
    /// to finish before they are closed.
    pub shutdown_timeout_secs: u64,
    /// Load balancers and reverse proxies in front of the public listener
    /// (CIDR ranges or addresses). Only a connection from one of them may
    /// name the client's address (`Forwarded: for=…` or `X-Forwarded-For`);
    /// from anyone else those headers are ignored. Empty: the TCP peer is
    /// always the client.
    pub trusted_proxies: Vec<crate::cidr::Cidr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            json_body_limit_bytes: 256 * 1024,
            upload_limit_bytes: 5 * 1024 * 1024,
            client_request_timeout_ms: 5_000,
            keep_alive_secs: 75,
            cors_allowed_origins: Vec::new(),
            workers: 0,
            shutdown_timeout_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// dev or production.
    pub mode: Mode,
    /// Public listener (OAuth, login, API).
    pub public_addr: SocketAddr,
    /// Internal/admin listener (mutual TLS required).
    pub admin_addr: SocketAddr,
    /// The URL clients use to reach the public listener (OAuth issuer base).
    pub public_base_url: String,
    /// TLS files (both listeners; the admin one requires client certificates
    /// signed by `client_ca_file`).
    pub tls: Option<TlsFiles>,
    /// Issue the listeners' certificate from Vault's PKI engine instead of
    /// reading `tls` files (renewed before expiry).
    pub tls_vault_pki: Option<crate::tls::VaultTls>,
    /// How often TLS files are checked for changes.
    pub tls_reload_secs: u64,
    /// PostgreSQL and tenancy.
    pub database: TenancyConfig,
    /// Redis (shared cache and rate limits); in-memory when absent.
    pub redis_url: Option<String>,
    /// TLS files for a `rediss://` `redis_url`: root CA (the platform's
    /// store when absent) and an optional client certificate. Given to the
    /// rate limiter and the market cache with `redis_url` when they have no
    /// Redis of their own.
    pub redis_tls: rampart_dbtls::RedisTlsConfig,
    /// Vault / OpenBao.
    pub vault: Option<VaultConfig>,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// HTTP.
    pub http: HttpConfig,
    /// OAuth authorization server (its issuer base is always `public_base_url`).
    pub auth: rampart_auth::AuthConfig,
    /// Market data: providers in fallback order, caches, store. Vendor keys
    /// come from the Vault secret `market` (field `<provider name>_api_key`
    /// and `<provider name>_api_secret`) when Vault is configured.
    pub market: rampart_market::MarketConfig,
    /// E-mail notifications (SMTP) and their jobs.
    pub notify: rampart_notify::NotifyConfig,
    /// The daily snapshot job (cron, broker API).
    pub snapshot: rampart_members::SnapshotConfig,
    /// The nightly job storing every portfolio's daily metrics (cron).
    pub portfolio_metrics: rampart_portfolio::MetricsJobConfig,
    /// The daily market-data ingestion (`[market_ingest]`: cron, symbols).
    pub market_ingest: rampart_market::IngestJobConfig,
    /// TradeStation's market-data API, called with each user's own
    /// TradeStation connection (`[tradestation] api_url`).
    pub tradestation: rampart_market::vendor::tradestation::TradeStationConfig,
    /// How often signing keys are re-read from their store (rotations made
    /// by other replicas or `POST /admin/keys/rotate`) and the staged
    /// rotation is advanced.
    pub key_check_secs: u64,
    /// Dev mode only: where generated dev secrets (the key-encryption key)
    /// are kept between runs.
    pub dev_secrets_dir: PathBuf,
    /// Dev mode without Vault only: seal members' broker credentials with a
    /// development transit key kept in `dev_secrets_dir` (`rampart demo`
    /// turns it on). Refused in production mode and with `[vault]`.
    pub dev_transit: bool,
    /// Trace export over OTLP (off unless `otlp_endpoint` is set).
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Upstream identity providers to register at start
    /// (`[[upstream_providers]]`, see [`crate::idp_config`]).
    pub upstream_providers: Vec<crate::idp_config::DeclaredProvider>,
    /// The GraphQL endpoint's limits and introspection (`[graphql]`).
    pub graphql: crate::graphql::config::GraphqlConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Dev,
            public_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            public_base_url: "https://localhost:8443".into(),
            tls: None,
            tls_vault_pki: None,
            tls_reload_secs: 10,
            database: TenancyConfig::default(),
            redis_url: None,
            redis_tls: rampart_dbtls::RedisTlsConfig::default(),
            vault: None,
            rate_limit: RateLimitConfig::default(),
            http: HttpConfig::default(),
            auth: rampart_auth::AuthConfig::default(),
            dev_secrets_dir: PathBuf::from(".rampart/dev-secrets"),
            dev_transit: false,
            market: rampart_market::MarketConfig::default(),
            key_check_secs: 60,
            snapshot: rampart_members::SnapshotConfig::default(),
            portfolio_metrics: rampart_portfolio::MetricsJobConfig::default(),
            market_ingest: rampart_market::IngestJobConfig::default(),
            tradestation: Default::default(),
            notify: rampart_notify::NotifyConfig::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
            upstream_providers: Vec::new(),
            graphql: crate::graphql::config::GraphqlConfig::default(),
        }
    }
}

/// Configuration problems, all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl ServerConfig {
    /// Loads defaults, then `file` (if given), then `RAMPART_*` variables,
    /// and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Defaults come from `#[serde(default)]`: nothing secret is serialized.
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("RAMPART_").split("__").ignore(&[
            "log",
            "log_json",
            "demo_dir",
            "database_url",
        ]));
        let config: ServerConfig = figment
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every problem with this configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.public_addr == self.admin_addr {
            problems.push("public_addr and admin_addr must differ".to_owned());
        }
        if !self.public_base_url.starts_with("https://") {
            problems.push("public_base_url must be an https:// URL".to_owned());
        }
        if self.tls.is_none() {
            problems.push(
                "tls: cert_file, key_file and client_ca_file are required (HTTPS only)".to_owned(),
            );
        }
        if let Some(tls) = &self.tls {
            for (name, path) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
                ("tls.client_ca_file", &tls.client_ca_file),
            ] {
                if !path.exists() {
                    problems.push(format!("{name}: {} does not exist", path.display()));
                }
            }
        }
        if self.mode == Mode::Production {
            if let Some(v) = &self.vault
                && matches!(v.auth, rampart_vault::VaultAuth::Token { .. })
            {
                problems.push(
                    "production mode: Vault auth must be AppRole (token auth is for development)"
                        .to_owned(),
                );
            }
            if self.vault.is_none() {
                problems.push(
                    "production mode needs [vault]: secrets are read from Vault only".to_owned(),
                );
            }
            if let Some(problem) = self
                .tls_vault_pki
                .as_ref()
                .and_then(|v| v.operator_problem())
            {
                problems.push(format!("production mode: {problem}"));
            }
            if !self.database.database_url.is_empty() {
                problems.push("production mode: database.database_url must come from Vault (secret `database`, field `url`), not from configuration".to_owned());
            }
        } else if self.database.database_url.is_empty() && self.vault.is_none() {
            problems.push("database.database_url is required (or configure [vault])".to_owned());
        }
        if self.dev_transit && self.mode == Mode::Production {
            problems.push(
                "dev_transit is refused in production mode: broker credentials are sealed by Vault transit"
                    .to_owned(),
            );
        } else if self.dev_transit && self.vault.is_some() {
            problems.push("dev_transit is refused when [vault] is configured".to_owned());
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            problems.push("redis_url must be a redis:// or rediss:// URL".to_owned());
        }
        if let Some(v) = &self.vault
            && let Err(e) = v.validate()
        {
            problems.push(format!("vault: {e}"));
        }
        if let Err(e) = self.rate_limit.validate() {
            problems.push(format!("rate_limit: {e}"));
        }
        if let Err(e) = self.telemetry.validate() {
            problems.push(e);
        }
        if let Err(e) = self.graphql.validate() {
            problems.push(e);
        }
        for p in &self.upstream_providers {
            problems.extend(p.problems(self.vault.is_some()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Where TLS files live in dev mode when none are configured.
    pub fn dev_pki_dir() -> PathBuf {
        PathBuf::from(".rampart/pki")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_only_its_paths_are_missing_here() {
        let path = rampart_testkit::package_dir().join("rampart.example.toml");
        let config: ServerConfig = Figment::new().merge(Toml::file(&path)).extract().unwrap();
        assert_eq!(config.mode, Mode::Production);
        let problems = config.validate().unwrap_err().0;
        assert!(
            problems.iter().all(|p| p.contains("does not exist")),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = ServerConfig {
            public_base_url: "http://plain".into(),
            redis_url: Some("http://not-redis".into()),
            mode: Mode::Production,
            ..ServerConfig::default()
        };
        let problems = config.validate().unwrap_err().0;
        for expected in [
            "public_base_url",
            "tls",
            "production mode needs [vault]",
            "redis_url",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
