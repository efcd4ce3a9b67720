//! The crate's one configuration struct, [`MarketConfig`].
//!
//! Durations are milliseconds (`*_ms`). Unknown fields are refused. Every
//! field has a default, so `{}` is a valid configuration: the embedded
//! provider alone, L1 cache only.
//!
//! ```
//! let config: rampart_market::MarketConfig = serde_json::from_str(r#"{
//!     "providers": [
//!         {"kind": "yahoo"},
//!         {"kind": "finnhub", "api_key": "from-vault", "rate_limit": {"capacity": 30, "per_second": 1.0}},
//!         {"kind": "embedded"}
//!     ],
//!     "cache": {"redis_url": "redis://127.0.0.1:6379", "l2_quote_ttl_ms": 60000},
//!     "hedge_after_ms": 300
//! }"#).unwrap();
//! assert_eq!(config.providers.len(), 3);
//! assert_eq!(config.cache.l1_quote_ttl, std::time::Duration::from_secs(5));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerConfig;
use crate::duration_ms;
use crate::resilience::{RateLimitConfig, RetryPolicy};

/// Which adapter a provider entry builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Alpaca Market Data v2.
    Alpaca,
    /// Alpha Vantage.
    AlphaVantage,
    /// Finnhub.
    Finnhub,
    /// Yahoo chart v8.
    Yahoo,
    /// Stooq CSV.
    Stooq,
    /// The embedded data set.
    Embedded,
    /// The PostgreSQL store (needs `store.database_url` or a pool).
    Store,
}

impl ProviderKind {
    /// The default name of a provider of this kind.
    pub fn default_name(self) -> &'static str {
        match self {
            ProviderKind::Alpaca => "alpaca",
            ProviderKind::AlphaVantage => "alpha_vantage",
            ProviderKind::Finnhub => "finnhub",
            ProviderKind::Yahoo => "yahoo",
            ProviderKind::Stooq => "stooq",
            ProviderKind::Embedded => "embedded",
            ProviderKind::Store => "store",
        }
    }

    /// The vendor's published free quota, as a token bucket.
    pub fn default_rate_limit(self) -> Option<RateLimitConfig> {
        let wait = Duration::from_millis(500);
        match self {
            // 200 requests/minute on the free plan.
            ProviderKind::Alpaca => Some(RateLimitConfig::per_period(
                200,
                Duration::from_secs(60),
                wait,
            )),
            // 5 requests/minute (and 25/day) on the free plan.
            ProviderKind::AlphaVantage => Some(RateLimitConfig::per_period(
                5,
                Duration::from_secs(60),
                wait,
            )),
            // 60 calls/minute, 30/second burst.
            ProviderKind::Finnhub => Some(RateLimitConfig {
                capacity: 30,
                per_second: 1.0,
                max_wait: wait,
            }),
            // Unpublished; stay polite.
            ProviderKind::Yahoo | ProviderKind::Stooq => Some(RateLimitConfig {
                capacity: 5,
                per_second: 2.0,
                max_wait: wait,
            }),
            ProviderKind::Embedded | ProviderKind::Store => None,
        }
    }
}

/// One provider in the chain (order of the list = fallback order).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Adapter.
    pub kind: ProviderKind,
    /// Name in provenance and metrics; the kind's name by default.
    #[serde(default)]
    pub name: Option<String>,
    /// API base URL; the vendor's production URL by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Alpaca: Trading API URL for asset search.
    #[serde(default)]
    pub trading_url: Option<String>,
    /// API key (from Vault in the server).
    #[serde(default)]
    pub api_key: Option<String>,
    /// API secret (Alpaca).
    #[serde(default)]
    pub api_secret: Option<String>,
    /// Alpaca data feed (`iex`, `sip`).
    #[serde(default)]
    pub feed: Option<String>,
    /// Alpha Vantage: use the adjusted daily series (premium).
    #[serde(default = "default_true")]
    pub adjusted: bool,
    /// Per-call timeout.
    #[serde(
        default = "default_timeout",
        with = "duration_ms",
        rename = "timeout_ms"
    )]
    pub timeout: Duration,
    /// Token bucket; the vendor's free quota by default.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Breaker; [`MarketConfig::breaker`] by default.
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    /// Retries; [`MarketConfig::retry`] by default.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl ProviderConfig {
    /// An entry of `kind` with defaults.
    pub fn new(kind: ProviderKind) -> Self {
        Self {
            kind,
            name: None,
            base_url: None,
            trading_url: None,
            api_key: None,
            api_secret: None,
            feed: None,
            adjusted: true,
            timeout: default_timeout(),
            rate_limit: None,
            breaker: None,
            retry: None,
        }
    }

    /// The provider's name.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.default_name().to_owned())
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach logs.
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "api_secret",
                &self.api_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

/// Cache settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// L1 (in-process) time to live of a quote.
    #[serde(with = "duration_ms", rename = "l1_quote_ttl_ms")]
    pub l1_quote_ttl: Duration,
    /// L1 time to live of a daily-bar range.
    #[serde(with = "duration_ms", rename = "l1_bars_ttl_ms")]
    pub l1_bars_ttl: Duration,
    /// L1 entries at most.
    pub l1_capacity: u64,
    /// Redis URL for L2; no L2 when `None`.
    pub redis_url: Option<String>,
    /// TLS files for a `rediss://` `redis_url` (root CA, optional client
    /// certificate).
    pub redis_tls: rampart_dbtls::RedisTlsConfig,
    /// L2 time to live of a fresh quote.
    #[serde(with = "duration_ms", rename = "l2_quote_ttl_ms")]
    pub l2_quote_ttl: Duration,
    /// How long L2 keeps the last known quote for stale serving.
    #[serde(with = "duration_ms", rename = "l2_stale_ttl_ms")]
    pub l2_stale_ttl: Duration,
    /// Deadline of one Redis operation; past it L2 counts as a miss.
    #[serde(with = "duration_ms", rename = "redis_timeout_ms")]
    pub redis_timeout: Duration,
    /// Key prefix in Redis.
    pub redis_prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            l1_quote_ttl: Duration::from_secs(5),
            l1_bars_ttl: Duration::from_secs(60),
            l1_capacity: 100_000,
            redis_url: None,
            redis_tls: rampart_dbtls::RedisTlsConfig::default(),
            l2_quote_ttl: Duration::from_secs(60),
            l2_stale_ttl: Duration::from_secs(7 * 24 * 3600),
            redis_timeout: Duration::from_millis(100),
            redis_prefix: "rampart:market".into(),
        }
    }
}

/// PostgreSQL (L3) settings.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Database URL; no L3 when `None` (unless a pool is handed in).
    pub database_url: Option<String>,
    /// Pool size.
    pub pool_size: Option<usize>,
    /// TLS to PostgreSQL (wins over the URL's libpq `ssl*` parameters).
    pub tls: rampart_dbtls::PgTlsConfig,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("StoreConfig")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The scheduled daily ingestion a server runs: the symbols held in any
/// portfolio plus `symbols`, each brought up to today through
/// [`crate::ProviderChain::update_daily`] (vendor rate limits and breakers
/// apply; a run after a crash resumes from each symbol's newest stored bar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestJobConfig {
    /// Whether the scheduler runs it (an operator's trigger always works).
    pub enabled: bool,
    /// When (five-field cron, UTC). Default `15 23 * * 1-5`: weekdays after
    /// the US close.
    pub cron: String,
    /// Symbols ingested whether or not a portfolio holds them (benchmarks).
    pub symbols: Vec<String>,
}

impl Default for IngestJobConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cron: "15 23 * * 1-5".into(),
            symbols: vec!["^GSPC".into()],
        }
    }
}

/// Everything the market crate needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketConfig {
    /// Providers in fallback order.
    pub providers: Vec<ProviderConfig>,
    /// Caches.
    pub cache: CacheConfig,
    /// L3 store.
    pub store: StoreConfig,
    /// Default breaker of every provider.
    pub breaker: BreakerConfig,
    /// Default retry policy of every provider.
    pub retry: RetryPolicy,
    /// Ask the next provider too when the current one has not answered a
    /// quote or bar request within this time; no hedging when `None`.
    #[serde(with = "duration_ms::option", rename = "hedge_after_ms")]
    pub hedge_after: Option<Duration>,
    /// How far back `update_daily` looks for a symbol with nothing stored.
    pub update_lookback_days: u32,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            providers: vec![ProviderConfig::new(ProviderKind::Embedded)],
            cache: CacheConfig::default(),
            store: StoreConfig::default(),
            breaker: BreakerConfig::default(),
            retry: RetryPolicy::default(),
            hedge_after: None,
            update_lookback_days: 30,
        }
    }
}
