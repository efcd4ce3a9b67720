//! # rampart-market
//!
//! Market data for Rampart that keeps flowing while vendors fail: one
//! [`MarketDataProvider`] trait, adapters for real vendor APIs, and a
//! [`ProviderChain`] that falls back from one provider to the next, with each
//! provider behind its own circuit breaker, rate limiter, timeout and retries.
//!
//! * **Providers**: [`vendor::AlpacaProvider`] (Market Data v2),
//!   [`vendor::AlphaVantageProvider`], [`vendor::FinnhubProvider`],
//!   [`vendor::YahooProvider`] (chart v8), [`vendor::StooqProvider`] (CSV),
//!   [`EmbeddedProvider`] (real historical prices compiled in: S&P 500 and
//!   NASDAQ daily 1999–2018, monthly AAPL/AMZN/GOOG/IBM/MSFT 2000–2010) and
//!   [`StoreProvider`] (PostgreSQL). Vendor errors, including those hidden in
//!   HTTP 200 bodies, become one [`MarketError`] with a
//!   [`retryable`](MarketError::retryable) verdict.
//! * **Resilience** (separate, composable pieces): [`CircuitBreaker`]
//!   (Resilience4j semantics: count/time sliding window, failure and slow-call
//!   rates, backoff in open, expiring half-open permits, forced-open and
//!   disabled states, transition events), [`RetryPolicy`] (exponential backoff
//!   with jitter, `Retry-After`), [`CallTimeout`], [`RateLimiter`] (token
//!   bucket) and [`Coalescer`] (single flight); optional hedging.
//! * **Caches**: L1 in process (moka, 5 s for quotes), L2 Redis (60 s, shared
//!   by replicas; Redis down means L1 + upstream, never an error), L3
//!   PostgreSQL for daily bars (permanent; only never-fetched ranges are
//!   fetched). Every answer is a [`Served`] saying which provider or cache
//!   layer served it, how old it is, and whether it is a stale stand-in.
//! * **Storage decision**: L3 is one shared `market` schema (prices are the
//!   same for every tenant), created by `migrations/market/` which the crate
//!   embeds and applies itself; see [`store`].
//! * **Ingestion**: [`ProviderChain::backfill`] and
//!   [`ProviderChain::update_daily`] report rows inserted, updated and
//!   rejected per symbol.
//! * **Metrics**: [`MarketMetrics`] registers call counters, latency
//!   histograms, breaker state gauges and cache counters in a
//!   `prometheus::Registry` for the server's `/metrics`.
//!
//! Configuration is one struct, [`MarketConfig`]; [`ProviderChain::from_config`]
//! builds everything it describes.
//!
//! ## Example
//!
//! The embedded data set needs no network:
//!
//! ```
//! use std::sync::Arc;
//! use chrono::NaiveDate;
//! use rampart_market::{Decimal, EmbeddedProvider, ProviderChain, ProviderPolicy, Source};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rampart_market::MarketError> {
//! let chain = ProviderChain::builder()
//!     .provider(Arc::new(EmbeddedProvider::new()), ProviderPolicy::default())
//!     .build()?;
//!
//! // The S&P 500 closed 2018 at 2506.85.
//! let quote = chain.quote("^gspc").await?;
//! // Prices are exact decimals: the vendor's digits, not the nearest double.
//! assert_eq!(quote.value.price.to_string(), "2506.85");
//! assert_eq!(quote.source, Source::Provider("embedded".into()));
//!
//! // Asked again within 5 s, the in-process cache answers.
//! let again = chain.quote("^GSPC").await?;
//! assert_eq!(again.source, Source::L1);
//!
//! let from = NaiveDate::from_ymd_opt(2008, 10, 1).unwrap();
//! let to = NaiveDate::from_ymd_opt(2008, 10, 31).unwrap();
//! let bars = chain.daily_bars("^GSPC", from, to).await?;
//! assert_eq!(bars.value.len(), 23);
//! let worst = bars.value.iter().map(|b| b.close).min().unwrap();
//! assert!(worst < Decimal::from(900));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod breaker;
pub mod cache;
pub mod chain;
pub mod config;
pub mod duration_ms;
pub mod embedded;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod instruments;
pub mod metrics;
pub mod model;
pub mod provider;
pub mod resilience;
mod schema;
pub mod store;
pub mod validate;
pub mod vendor;

pub use breaker::{
    BreakerConfig, BreakerState, CallOutcome, CircuitBreaker, SlidingWindow, StateTransition,
    WaitInOpen,
};
pub use cache::{CachedQuote, RedisCache};
pub use chain::{GuardedProvider, ProviderChain, ProviderChainBuilder, ProviderPolicy};
pub use chrono::NaiveDate;
pub use config::{
    CacheConfig, IngestJobConfig, MarketConfig, ProviderConfig, ProviderKind, StoreConfig,
};
pub use embedded::EmbeddedProvider;
pub use error::{MarketError, ProviderFailure, Result};
pub use ingest::IngestReport;
pub use instruments::Instrument;
pub use metrics::MarketMetrics;
pub use model::{
    Bar, Fundamentals, NewsItem, Quote, Served, Source, Staleness, SymbolMatch, normalize_symbol,
};
pub use provider::MarketDataProvider;
/// Prices are exact decimals (re-exported from rampart-amount).
pub use rampart_amount::Decimal;
pub use resilience::{CallTimeout, Coalescer, RateLimitConfig, RateLimiter, RetryPolicy};
pub use store::{PgPool, StoreProvider, connect_pool, connect_pool_with_tls};
pub use validate::{Rejections, validate_bars};
