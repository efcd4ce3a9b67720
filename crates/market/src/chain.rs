//! [`ProviderChain`]: providers in order, each behind a breaker, a rate
//! limiter, a timeout and retries, with coalescing, layered caches, stale
//! serving and optional hedging.
//!
//! A quote request goes L1 → (coalesced) L2 → providers in order → stale L2/L3.
//! A daily-bar request goes L1 → (coalesced) L3, fetching only the ranges L3
//! has never fetched → stale L3 when every provider fails.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::breaker::{BreakerConfig, CallOutcome, CircuitBreaker};
use crate::cache::{CachedQuote, RedisCache};
use crate::config::{CacheConfig, MarketConfig, ProviderKind};
use crate::embedded::EmbeddedProvider;
use crate::error::{MarketError, ProviderFailure, Result};
use crate::metrics::MarketMetrics;
use crate::model::{
    Bar, Fundamentals, NewsItem, Quote, Served, Source, Staleness, SymbolMatch, check_range,
    normalize_symbol,
};
use crate::provider::MarketDataProvider;
use crate::resilience::{
    CallTimeout, Coalescer, Idempotency, RateLimitConfig, RateLimiter, RetryPolicy,
};
use crate::store::{PgPool, StoreProvider, UpsertCounts};
use crate::validate::{Rejections, validate_bars, validate_quote};
use crate::vendor::{
    AlpacaProvider, AlphaVantageProvider, FinnhubProvider, StooqProvider, VendorSettings,
    YahooProvider,
};

/// How one provider is guarded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPolicy {
    /// Circuit breaker settings.
    pub breaker: BreakerConfig,
    /// Retries.
    pub retry: RetryPolicy,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Token bucket; none when `None`.
    pub rate_limit: Option<RateLimitConfig>,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        Self {
            breaker: BreakerConfig::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(5),
            rate_limit: None,
        }
    }
}

/// A provider behind its breaker, rate limiter, timeout and retry policy
/// (applied as retry(breaker(limiter(timeout(call)))), like Resilience4j's
/// default decoration order).
pub struct GuardedProvider {
    provider: Arc<dyn MarketDataProvider>,
    breaker: CircuitBreaker,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    timeout: CallTimeout,
    metrics: MarketMetrics,
}

impl std::fmt::Debug for GuardedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedProvider")
            .field("name", &self.provider.name())
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl GuardedProvider {
    /// Wraps `provider`.
    pub fn new(
        provider: Arc<dyn MarketDataProvider>,
        policy: ProviderPolicy,
        metrics: MarketMetrics,
    ) -> Self {
        let name = provider.name().to_owned();
        let breaker = CircuitBreaker::new(name.clone(), policy.breaker);
        metrics.breaker_state.with_label_values(&[&name]).set(0);
        let gauge = metrics.breaker_state.clone();
        let transitions = metrics.breaker_transitions.clone();
        breaker.on_transition(move |name, t| {
            gauge.with_label_values(&[name]).set(t.to.as_gauge());
            transitions
                .with_label_values(&[name, &format!("{:?}", t.to)])
                .inc();
        });
        Self {
            limiter: policy.rate_limit.map(|r| RateLimiter::new(name.clone(), r)),
            timeout: CallTimeout::new(name, policy.timeout),
            retry: policy.retry,
            provider,
            breaker,
            metrics,
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        self.provider.name()
    }

    /// Its circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The provider itself.
    pub fn provider(&self) -> &Arc<dyn MarketDataProvider> {
        &self.provider
    }

    /// Calls `f` on the provider through retry, breaker, limiter and timeout.
    pub async fn call<'a, T, F>(&'a self, operation: &'static str, f: F) -> Result<T>
    where
        F: Fn(&'a dyn MarketDataProvider) -> BoxFuture<'a, Result<T>>,
    {
        self.retry
            .run(Idempotency::Idempotent, |_| self.attempt(operation, &f))
            .await
    }

    async fn attempt<'a, T, F>(&'a self, operation: &'static str, f: &F) -> Result<T>
    where
        F: Fn(&'a dyn MarketDataProvider) -> BoxFuture<'a, Result<T>>,
    {
        let name = self.provider.name();
        let permit = match self.breaker.try_acquire() {
            Ok(p) => p,
            Err(refused) => {
                self.metrics
                    .calls
                    .with_label_values(&[name, operation, "not_permitted"])
                    .inc();
                return Err(MarketError::CircuitOpen {
                    provider: name.to_owned(),
                    retry_in: refused.retry_in,
                });
            }
        };
        if let Some(limiter) = &self.limiter
            && let Err(e) = limiter.acquire().await
        {
            self.metrics
                .calls
                .with_label_values(&[name, operation, "throttled"])
                .inc();
            permit.record(CallOutcome::Ignored);
            return Err(e);
        }
        let started = Instant::now();
        let result = self.timeout.run(f(self.provider.as_ref())).await;
        let elapsed = started.elapsed();
        permit.record_with_duration(CallOutcome::classify(&result), elapsed);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.metrics
            .calls
            .with_label_values(&[name, operation, outcome])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[name, operation])
            .observe(elapsed.as_secs_f64());
        result
    }
}

type BarsKey = (String, NaiveDate, NaiveDate);

#[derive(Debug)]
struct CachedBars {
    bars: Vec<Bar>,
    origin: Option<String>,
    cached_at: Instant,
    age_at_cache: Duration,
}

pub(crate) struct ChainInner {
    pub(crate) providers: Vec<GuardedProvider>,
    l1_quotes: moka::sync::Cache<String, Arc<CachedQuote>>,
    l1_bars: moka::sync::Cache<BarsKey, Arc<CachedBars>>,
    /// Search answers by lower-cased query.
    l1_search: Answers<Vec<SymbolMatch>>,
    /// Fundamentals by symbol.
    l1_fundamentals: Answers<Fundamentals>,
    /// News by symbol and limit.
    l1_news: Answers<Vec<NewsItem>>,
    pub(crate) l2: Option<RedisCache>,
    pub(crate) store: Option<StoreProvider>,
    quote_flights: Coalescer<(String, Staleness), Result<Served<Quote>>>,
    bar_flights: Coalescer<(BarsKey, Staleness), Result<Served<Vec<Bar>>>>,
    hedge_after: Option<Duration>,
    pub(crate) metrics: MarketMetrics,
    pub(crate) update_lookback_days: u32,
}

/// The market-data chain. Cheap to clone.
///
/// Falls back to the next provider on any failure except a bad request
/// (another vendor may know a symbol this one does not); calls to a provider
/// whose breaker is open are not made.
#[derive(Clone)]
pub struct ProviderChain {
    pub(crate) inner: Arc<ChainInner>,
}

impl std::fmt::Debug for ProviderChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderChain")
            .field(
                "providers",
                &self
                    .inner
                    .providers
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            )
            .field("l2", &self.inner.l2.is_some())
            .field("store", &self.inner.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ProviderChain`].
pub struct ProviderChainBuilder {
    providers: Vec<(Arc<dyn MarketDataProvider>, ProviderPolicy)>,
    cache: CacheConfig,
    redis: Option<RedisCache>,
    store: Option<StoreProvider>,
    hedge_after: Option<Duration>,
    metrics: Option<MarketMetrics>,
    update_lookback_days: u32,
}

impl std::fmt::Debug for ProviderChainBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderChainBuilder")
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

impl ProviderChainBuilder {
    /// Adds a provider (tried after the ones already added).
    pub fn provider(
        mut self,
        provider: Arc<dyn MarketDataProvider>,
        policy: ProviderPolicy,
    ) -> Self {
        self.providers.push((provider, policy));
        self
    }

    /// Cache settings (L1 TTLs and capacity; L2 TTLs are the Redis cache's).
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Uses Redis as L2.
    pub fn redis(mut self, redis: RedisCache) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Uses PostgreSQL as L3 (already migrated).
    pub fn store(mut self, store: StoreProvider) -> Self {
        self.store = Some(store);
        self
    }

    /// Hedges after this delay.
    pub fn hedge_after(mut self, delay: Option<Duration>) -> Self {
        self.hedge_after = delay;
        self
    }

    /// Metrics (a registry of their own by default).
    pub fn metrics(mut self, metrics: MarketMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// How far back `update_daily` goes for a symbol with nothing stored.
    pub fn update_lookback_days(mut self, days: u32) -> Self {
        self.update_lookback_days = days;
        self
    }

    /// The chain.
    pub fn build(self) -> Result<ProviderChain> {
        let metrics = match self.metrics {
            Some(m) => m,
            None => MarketMetrics::new()?,
        };
        let mut names = std::collections::HashSet::new();
        for (p, _) in &self.providers {
            if !names.insert(p.name().to_owned()) {
                return Err(MarketError::Config(format!(
                    "two providers named `{}`",
                    p.name()
                )));
            }
        }
        let providers = self
            .providers
            .into_iter()
            .map(|(p, policy)| GuardedProvider::new(p, policy, metrics.clone()))
            .collect();
        let l1_quotes = moka::sync::Cache::builder()
            .max_capacity(self.cache.l1_capacity)
            .time_to_live(self.cache.l1_quote_ttl.max(Duration::from_millis(1)))
            .build();
        let l1_bars = moka::sync::Cache::builder()
            .max_capacity((self.cache.l1_capacity / 10).max(100))
            .time_to_live(self.cache.l1_bars_ttl.max(Duration::from_millis(1)))
            .build();
        // Search, fundamentals and news change about as rarely as bar
        // ranges: same TTL.
        let (capacity, ttl) = (
            (self.cache.l1_capacity / 10).max(100),
            self.cache.l1_bars_ttl,
        );
        let (l1_search, l1_fundamentals, l1_news) = (
            Answers::new(capacity, ttl),
            Answers::new(capacity, ttl),
            Answers::new(capacity, ttl),
        );
        Ok(ProviderChain {
            inner: Arc::new(ChainInner {
                providers,
                l1_quotes,
                l1_bars,
                l1_search,
                l1_fundamentals,
                l1_news,
                l2: self.redis,
                store: self.store,
                quote_flights: Coalescer::new(),
                bar_flights: Coalescer::new(),
                hedge_after: self.hedge_after,
                metrics,
                update_lookback_days: self.update_lookback_days,
            }),
        })
    }
}

/// Builds the adapter a configuration entry names.
pub fn build_provider(
    config: &crate::config::ProviderConfig,
    client: Option<reqwest::Client>,
    store: Option<&StoreProvider>,
) -> Result<Arc<dyn MarketDataProvider>> {
    let settings = VendorSettings {
        name: config.name(),
        base_url: config.base_url.clone(),
        trading_url: config.trading_url.clone(),
        api_key: config.api_key.clone(),
        api_secret: config.api_secret.clone(),
        feed: config.feed.clone(),
        client,
    };
    Ok(match config.kind {
        ProviderKind::Alpaca => Arc::new(AlpacaProvider::new(settings)?),
        ProviderKind::AlphaVantage => {
            let p = AlphaVantageProvider::new(settings)?;
            Arc::new(if config.adjusted { p } else { p.unadjusted() })
        }
        ProviderKind::Finnhub => Arc::new(FinnhubProvider::new(settings)?),
        ProviderKind::Yahoo => Arc::new(YahooProvider::new(settings)?),
        ProviderKind::Stooq => Arc::new(StooqProvider::new(settings)?),
        ProviderKind::Embedded => Arc::new(EmbeddedProvider::named(settings.name)),
        ProviderKind::Store => match store {
            Some(s) => Arc::new(s.clone()),
            None => {
                return Err(MarketError::Config(
                    "a `store` provider needs `store.database_url` or a pool".into(),
                ));
            }
        },
    })
}

impl ProviderChain {
    /// An empty builder.
    pub fn builder() -> ProviderChainBuilder {
        ProviderChainBuilder {
            providers: Vec::new(),
            cache: CacheConfig::default(),
            redis: None,
            store: None,
            hedge_after: None,
            metrics: None,
            update_lookback_days: 30,
        }
    }

    /// Builds the chain a configuration describes: adapters, Redis (L2) when
    /// `cache.redis_url` is set, the store (L3, migrated) from `pool` or
    /// `store.database_url`, metrics in `registry` (or one of their own).
    pub async fn from_config(
        config: &MarketConfig,
        registry: Option<&prometheus::Registry>,
        pool: Option<PgPool>,
    ) -> Result<Self> {
        let metrics = match registry {
            Some(r) => MarketMetrics::register(r)?,
            None => MarketMetrics::new()?,
        };
        let store = match (pool, &config.store.database_url) {
            (Some(pool), _) => Some(StoreProvider::new(pool)),
            (None, Some(url)) => Some(StoreProvider::new(crate::store::connect_pool_with_tls(
                url,
                &config.store.tls,
                config.store.pool_size.unwrap_or(8),
            )?)),
            (None, None) => None,
        };
        if let Some(store) = &store {
            store.migrate().await?;
        }
        let client = if config
            .providers
            .iter()
            .any(|p| !matches!(p.kind, ProviderKind::Embedded | ProviderKind::Store))
        {
            Some(crate::vendor::http::default_client()?)
        } else {
            None
        };
        let mut builder = Self::builder()
            .cache(config.cache.clone())
            .hedge_after(config.hedge_after)
            .metrics(metrics)
            .update_lookback_days(config.update_lookback_days);
        for entry in &config.providers {
            let provider = build_provider(entry, client.clone(), store.as_ref())?;
            let policy = ProviderPolicy {
                breaker: entry
                    .breaker
                    .clone()
                    .unwrap_or_else(|| config.breaker.clone()),
                retry: entry.retry.clone().unwrap_or_else(|| config.retry.clone()),
                timeout: entry.timeout,
                rate_limit: entry
                    .rate_limit
                    .clone()
                    .or_else(|| entry.kind.default_rate_limit()),
            };
            builder = builder.provider(provider, policy);
        }
        if let Some(url) = &config.cache.redis_url {
            let c = &config.cache;
            builder = builder.redis(
                RedisCache::with_client(
                    rampart_dbtls::redis_client(url, &c.redis_tls)
                        .map_err(|e| MarketError::Config(format!("redis: {e}")))?,
                    &c.redis_prefix,
                    c.l2_quote_ttl,
                    c.l2_stale_ttl,
                    c.redis_timeout,
                )
                .await?,
            );
        }
        if let Some(store) = store {
            builder = builder.store(store);
        }
        builder.build()
    }

    /// The guarded providers, in order.
    pub fn providers(&self) -> &[GuardedProvider] {
        &self.inner.providers
    }

    /// The breaker of the provider named `name`.
    pub fn breaker(&self, name: &str) -> Option<&CircuitBreaker> {
        self.inner
            .providers
            .iter()
            .find(|p| p.name() == name)
            .map(GuardedProvider::breaker)
    }

    /// The metrics.
    pub fn metrics(&self) -> &MarketMetrics {
        &self.inner.metrics
    }

    /// The L3 store, if any.
    pub fn store(&self) -> Option<&StoreProvider> {
        self.inner.store.as_ref()
    }

    /// The L2 cache, if any.
    pub fn redis(&self) -> Option<&RedisCache> {
        self.inner.l2.as_ref()
    }

    /// Requests that shared another request's upstream work so far.
    pub fn coalesced_requests(&self) -> u64 {
        self.inner.quote_flights.joined() + self.inner.bar_flights.joined()
    }

    /// Drops a symbol from L1 (tests and admin tools).
    pub fn evict_l1(&self, symbol: &str) {
        self.inner
            .l1_quotes
            .invalidate(&symbol.to_ascii_uppercase());
        self.inner.l1_bars.invalidate_all();
    }

    /// The latest quote, stale allowed.
    pub async fn quote(&self, symbol: &str) -> Result<Served<Quote>> {
        self.quote_with(symbol, Staleness::AllowStale).await
    }

    /// The latest quote, with a staleness policy for when every provider fails.
    pub async fn quote_with(&self, symbol: &str, staleness: Staleness) -> Result<Served<Quote>> {
        let symbol = normalize_symbol(symbol)?;
        let inner = &self.inner;
        if let Some(hit) = inner.l1_quotes.get(&symbol) {
            inner.metrics.served_from_l1();
            return Ok(Served {
                value: hit.quote.clone(),
                source: Source::L1,
                origin: Some(hit.origin.clone()),
                age: hit.age(Utc::now()),
                stale: false,
            });
        }
        inner.metrics.cache_result("l1", "miss");
        let chain = Arc::clone(inner);
        let key = (symbol.clone(), staleness);
        let (result, joined) = inner
            .quote_flights
            .run(key, move || async move {
                chain.fetch_quote(symbol, staleness).await
            })
            .await;
        if joined {
            inner.metrics.coalesced.inc();
        }
        result
    }

    /// Quotes for several symbols: L1, then one L2 round trip, then each
    /// provider's batch call for what is still missing.
    pub async fn quotes(
        &self,
        symbols: &[String],
        staleness: Staleness,
    ) -> Vec<(String, Result<Served<Quote>>)> {
        self.inner.fetch_quotes(symbols, staleness).await
    }

    /// Daily bars for `from..=to`, stale allowed.
    pub async fn daily_bars(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Served<Vec<Bar>>> {
        self.daily_bars_with(symbol, from, to, Staleness::AllowStale)
            .await
    }

    /// Daily bars with a staleness policy.
    pub async fn daily_bars_with(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
        staleness: Staleness,
    ) -> Result<Served<Vec<Bar>>> {
        let symbol = normalize_symbol(symbol)?;
        check_range(from, to)?;
        let inner = &self.inner;
        let key = (symbol.clone(), from, to);
        if let Some(hit) = inner.l1_bars.get(&key) {
            inner.metrics.served_from_l1();
            return Ok(Served {
                value: hit.bars.clone(),
                source: Source::L1,
                origin: hit.origin.clone(),
                age: hit.age_at_cache + hit.cached_at.elapsed(),
                stale: false,
            });
        }
        inner.metrics.cache_result("l1", "miss");
        let chain = Arc::clone(inner);
        let (result, joined) = inner
            .bar_flights
            .run((key, staleness), move || async move {
                chain.fetch_bars(symbol, from, to, staleness).await
            })
            .await;
        if joined {
            inner.metrics.coalesced.inc();
        }
        result
    }

    /// Instruments matching `query`, from the first provider that answers;
    /// kept in L1 (for the bars TTL) by lower-cased query.
    pub async fn search(&self, query: &str) -> Result<Served<Vec<SymbolMatch>>> {
        if query.trim().is_empty() {
            return Err(MarketError::InvalidInput("empty search".into()));
        }
        let q = query.trim();
        let inner = &self.inner;
        let served = inner
            .answer(&inner.l1_search, q.to_lowercase(), "search", move |p| {
                p.search(q)
            })
            .await?;
        // A vendor's fresh answer describes instruments: keep them.
        if let Source::Provider(name) = &served.source {
            self.keep_instruments(&served.value, name).await;
        }
        Ok(served)
    }

    /// Fundamentals, from the first provider that has them; kept in L1 (for
    /// the bars TTL) by symbol.
    pub async fn fundamentals(&self, symbol: &str) -> Result<Served<Fundamentals>> {
        let symbol = normalize_symbol(symbol)?;
        let s = symbol.as_str();
        let inner = &self.inner;
        inner
            .answer(
                &inner.l1_fundamentals,
                symbol.clone(),
                "fundamentals",
                move |p| p.fundamentals(s),
            )
            .await
    }

    /// Recent news, from the first provider that has them; kept in L1 (for
    /// the bars TTL) by symbol and limit.
    pub async fn news(&self, symbol: &str, limit: usize) -> Result<Served<Vec<NewsItem>>> {
        let symbol = normalize_symbol(symbol)?;
        let s = symbol.as_str();
        let inner = &self.inner;
        inner
            .answer(
                &inner.l1_news,
                format!("{symbol}:{limit}"),
                "news",
                move |p| p.news(s, limit),
            )
            .await
    }
}

/// An L1 cache of whole answers (search, fundamentals, news): the value, the
/// provider that gave it and when.
struct Answers<T>(moka::sync::Cache<String, Arc<(T, String, Instant)>>);

impl<T: Clone + Send + Sync + 'static> Answers<T> {
    fn new(capacity: u64, ttl: Duration) -> Self {
        Answers(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        )
    }
}

impl ChainInner {
    /// The L1 answer under `key`, else the first provider's (then kept).
    async fn answer<'a, T, F>(
        &'a self,
        cache: &Answers<T>,
        key: String,
        operation: &'static str,
        call: F,
    ) -> Result<Served<T>>
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(&'a dyn MarketDataProvider) -> BoxFuture<'a, Result<T>> + Copy + Send + Sync + 'a,
    {
        if let Some(hit) = cache.0.get(&key) {
            self.metrics.cache_result("l1", "hit");
            return Ok(Served {
                value: hit.0.clone(),
                source: Source::L1,
                origin: Some(hit.1.clone()),
                age: hit.2.elapsed(),
                stale: false,
            });
        }
        self.metrics.cache_result("l1", "miss");
        let (value, provider) = self
            .try_providers(|g| g.call(operation, call).boxed())
            .await?;
        cache.0.insert(
            key,
            Arc::new((value.clone(), provider.clone(), Instant::now())),
        );
        Ok(fresh(value, provider))
    }
}

fn fresh<T>(value: T, provider: String) -> Served<T> {
    Served {
        value,
        source: Source::Provider(provider.clone()),
        origin: Some(provider),
        age: Duration::ZERO,
        stale: false,
    }
}

/// What filling the missing ranges of a symbol did.
#[derive(Debug, Default)]
pub(crate) struct FillReport {
    pub fetched: u64,
    pub counts: UpsertCounts,
    pub rejected: Rejections,
    pub provider: Option<String>,
    pub ranges_fetched: usize,
    pub error: Option<MarketError>,
}

impl ChainInner {
    /// Tries providers in order (hedging when configured) until one answers.
    async fn try_providers<'a, T, F>(&'a self, call: F) -> Result<(T, String)>
    where
        T: Send + 'a,
        F: Fn(&'a GuardedProvider) -> BoxFuture<'a, Result<T>>,
    {
        if self.providers.is_empty() {
            return Err(MarketError::NoProvider);
        }
        let mut failures: Vec<ProviderFailure> = Vec::new();
        let mut next = 0usize;
        let mut inflight = FuturesUnordered::new();
        let launch = |idx: usize| {
            self.providers
                .get(idx)
                .map(|g| call(g).map(move |r| (idx, r)))
        };
        loop {
            if inflight.is_empty() {
                let Some(fut) = launch(next) else { break };
                inflight.push(fut);
                next += 1;
            }
            let hedge = self
                .hedge_after
                .filter(|_| next < self.providers.len() && inflight.len() == 1);
            let done = match hedge {
                Some(delay) => {
                    tokio::select! {
                        done = inflight.next() => done,
                        () = tokio::time::sleep(delay) => {
                            if let Some(fut) = launch(next) {
                                tracing::debug!(after = ?delay, "hedging: asking the next provider too");
                                inflight.push(fut);
                                next += 1;
                            }
                            continue;
                        }
                    }
                }
                None => inflight.next().await,
            };
            match done {
                Some((idx, Ok(value))) => {
                    let name = self
                        .providers
                        .get(idx)
                        .map(|g| g.name().to_owned())
                        .unwrap_or_default();
                    return Ok((value, name));
                }
                Some((idx, Err(e))) => {
                    if !e.falls_back() {
                        return Err(e);
                    }
                    let provider = self
                        .providers
                        .get(idx)
                        .map(|g| g.name().to_owned())
                        .unwrap_or_default();
                    tracing::debug!(%provider, error = %e, "provider failed; falling back");
                    failures.push(ProviderFailure {
                        provider,
                        error: Box::new(e),
                    });
                }
                None => {}
            }
        }
        Err(summarize(failures))
    }

    async fn fetch_quote(
        self: Arc<Self>,
        symbol: String,
        staleness: Staleness,
    ) -> Result<Served<Quote>> {
        if let Some(l2) = &self.l2 {
            match l2.get_fresh(&symbol).await {
                Ok(Some(hit)) => {
                    self.metrics.cache_result("l2", "hit");
                    self.metrics
                        .served
                        .with_label_values(&["l2", "false"])
                        .inc();
                    let age = hit.age(Utc::now());
                    let served = Served {
                        value: hit.quote.clone(),
                        source: Source::L2,
                        origin: Some(hit.origin.clone()),
                        age,
                        stale: false,
                    };
                    self.l1_quotes.insert(symbol, Arc::new(hit));
                    return Ok(served);
                }
                Ok(None) => self.metrics.cache_result("l2", "miss"),
                Err(e) => self.l2_unavailable(&e),
            }
        }
        let sym = symbol.as_str();
        let fetched = self
            .try_providers(|g| {
                g.call("quote", move |p| {
                    async move {
                        let q = p.quote(sym).await?;
                        validate_quote(p.name(), &q, Utc::now())?;
                        Ok(q)
                    }
                    .boxed()
                })
                .boxed()
            })
            .await;
        match fetched {
            Ok((quote, provider)) => {
                self.metrics
                    .served
                    .with_label_values(&["provider", "false"])
                    .inc();
                let cached = CachedQuote {
                    quote,
                    origin: provider.clone(),
                    fetched_at: Utc::now(),
                };
                self.remember_quote(&cached).await;
                Ok(fresh(cached.quote, provider))
            }
            Err(e) => self.stale_quote(&symbol, staleness, e).await,
        }
    }

    async fn remember_quote(&self, cached: &CachedQuote) {
        self.l1_quotes
            .insert(cached.quote.symbol.clone(), Arc::new(cached.clone()));
        if let Some(l2) = &self.l2
            && let Err(e) = l2.put(cached).await
        {
            self.metrics.cache_result("l2", "error");
            tracing::debug!(error = %e, "L2 write dropped");
        }
        if let Some(store) = &self.store {
            let store = store.clone();
            let cached = cached.clone();
            tokio::spawn(async move {
                if let Err(e) = store.upsert_quote(&cached).await {
                    tracing::debug!(error = %e, "L3 quote write failed");
                }
            });
        }
    }

    /// An L2 read failed: counted, logged, and the request goes on without L2.
    fn l2_unavailable(&self, error: &dyn std::fmt::Display) {
        self.metrics.cache_result("l2", "error");
        tracing::debug!(error = %error, "L2 unavailable; continuing without it");
    }

    /// `last`, served stale from the cache tier `tier` (a metrics label).
    fn served_stale(
        &self,
        last: CachedQuote,
        now: DateTime<Utc>,
        tier: &str,
        source: Source,
    ) -> Served<Quote> {
        self.metrics.served.with_label_values(&[tier, "true"]).inc();
        Served {
            age: last.age(now),
            value: last.quote,
            source,
            origin: Some(last.origin),
            stale: true,
        }
    }

    /// Every provider failed: the newest cached value, if the caller accepts it.
    async fn stale_quote(
        &self,
        symbol: &str,
        staleness: Staleness,
        error: MarketError,
    ) -> Result<Served<Quote>> {
        if matches!(
            error,
            MarketError::UnknownSymbol { .. }
                | MarketError::InvalidInput(_)
                | MarketError::Unsupported { .. }
        ) || staleness == Staleness::Forbid
        {
            return Err(error);
        }
        let now = Utc::now();
        if let Some(l2) = &self.l2 {
            match l2.get_last(symbol).await {
                Ok(Some(last)) if staleness.accepts(last.age(now)) => {
                    return Ok(self.served_stale(last, now, "l2", Source::L2));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "L2 unavailable for stale lookup"),
            }
        }
        if let Some(store) = &self.store {
            match store.latest_quote(symbol).await {
                Ok(Some(last)) if staleness.accepts(last.age(now)) => {
                    return Ok(self.served_stale(last, now, "l3", Source::L3));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "L3 unavailable for stale lookup"),
            }
        }
        Err(error)
    }

    async fn fetch_quotes(
        &self,
        symbols: &[String],
        staleness: Staleness,
    ) -> Vec<(String, Result<Served<Quote>>)> {
        let mut results: Vec<(String, Option<Result<Served<Quote>>>)> = symbols
            .iter()
            .map(|s| match normalize_symbol(s) {
                Ok(n) => (n, None),
                Err(e) => (s.clone(), Some(Err(e))),
            })
            .collect();
        let now = Utc::now();
        for (symbol, slot) in results.iter_mut().filter(|(_, r)| r.is_none()) {
            if let Some(hit) = self.l1_quotes.get(symbol) {
                self.metrics.cache_result("l1", "hit");
                *slot = Some(Ok(Served {
                    value: hit.quote.clone(),
                    source: Source::L1,
                    origin: Some(hit.origin.clone()),
                    age: hit.age(now),
                    stale: false,
                }));
            }
        }
        if let Some(l2) = &self.l2 {
            let missing: Vec<String> = results
                .iter()
                .filter(|(_, r)| r.is_none())
                .map(|(s, _)| s.clone())
                .collect();
            match l2.get_many_fresh(&missing).await {
                Ok(found) => {
                    for (symbol, hit) in missing.iter().zip(found) {
                        let Some(hit) = hit else { continue };
                        self.metrics.cache_result("l2", "hit");
                        if let Some((_, slot)) =
                            results.iter_mut().find(|(s, r)| s == symbol && r.is_none())
                        {
                            *slot = Some(Ok(Served {
                                value: hit.quote.clone(),
                                source: Source::L2,
                                origin: Some(hit.origin.clone()),
                                age: hit.age(now),
                                stale: false,
                            }));
                        }
                        self.l1_quotes.insert(symbol.clone(), Arc::new(hit));
                    }
                }
                Err(e) => self.l2_unavailable(&e),
            }
        }
        let mut failures: Vec<ProviderFailure> = Vec::new();
        for g in &self.providers {
            let mut missing: Vec<String> = results
                .iter()
                .filter(|(_, r)| r.is_none())
                .map(|(s, _)| s.clone())
                .collect();
            missing.dedup();
            if missing.is_empty() {
                break;
            }
            let wanted = missing.as_slice();
            match g.call("quotes", move |p| p.quotes(wanted)).await {
                Ok(quotes) => {
                    let now = Utc::now();
                    for quote in quotes {
                        if let Err(e) = validate_quote(g.name(), &quote, now) {
                            tracing::debug!(error = %e, "quote dropped");
                            continue;
                        }
                        let cached = CachedQuote {
                            quote,
                            origin: g.name().to_owned(),
                            fetched_at: now,
                        };
                        self.remember_quote(&cached).await;
                        for (_, slot) in results
                            .iter_mut()
                            .filter(|(s, r)| *s == cached.quote.symbol && r.is_none())
                        {
                            *slot = Some(Ok(fresh(cached.quote.clone(), g.name().to_owned())));
                        }
                    }
                }
                Err(e) => failures.push(ProviderFailure {
                    provider: g.name().to_owned(),
                    error: Box::new(e),
                }),
            }
        }
        let mut out = Vec::with_capacity(results.len());
        for (symbol, slot) in results {
            let result = match slot {
                Some(r) => r,
                None => {
                    let error = if failures.is_empty() {
                        MarketError::UnknownSymbol {
                            provider: "chain".into(),
                            symbol: symbol.clone(),
                        }
                    } else {
                        summarize(failures.clone())
                    };
                    self.stale_quote(&symbol, staleness, error).await
                }
            };
            out.push((symbol, result));
        }
        out
    }

    async fn fetch_bars(
        self: Arc<Self>,
        symbol: String,
        from: NaiveDate,
        to: NaiveDate,
        staleness: Staleness,
    ) -> Result<Served<Vec<Bar>>> {
        let served = match &self.store {
            Some(store) => match self
                .bars_through_store(store, &symbol, from, to, staleness)
                .await
            {
                Ok(served) => served,
                Err(MarketError::Store(e)) => {
                    tracing::warn!(error = %e, "L3 unavailable; fetching bars directly");
                    self.bars_direct(&symbol, from, to).await?
                }
                Err(e) => return Err(e),
            },
            None => self.bars_direct(&symbol, from, to).await?,
        };
        if !served.stale {
            let cached = CachedBars {
                bars: served.value.clone(),
                origin: served.origin.clone(),
                cached_at: Instant::now(),
                age_at_cache: served.age,
            };
            self.l1_bars.insert((symbol, from, to), Arc::new(cached));
        }
        Ok(served)
    }

    async fn bars_direct(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Served<Vec<Bar>>> {
        let (bars, provider) = self.fetch_range(symbol, from, to).await?;
        let (good, rejected) = validate_bars(bars, Utc::now().date_naive());
        self.count_rejected(&provider, &rejected);
        self.metrics
            .served
            .with_label_values(&["provider", "false"])
            .inc();
        Ok(fresh(
            good.into_iter()
                .filter(|b| b.date >= from && b.date <= to)
                .collect(),
            provider,
        ))
    }

    async fn fetch_range(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<Bar>, String)> {
        self.try_providers(|g| {
            g.call("daily_bars", move |p| p.daily_bars(symbol, from, to))
                .boxed()
        })
        .await
    }

    fn count_rejected(&self, provider: &str, rejected: &Rejections) {
        if rejected.total() > 0 {
            tracing::warn!(provider, ?rejected, "bars rejected by validation");
            self.metrics
                .rejected_rows
                .with_label_values(&[provider])
                .inc_by(rejected.total());
        }
    }

    /// Fetches the never-fetched parts of `from..=to` into L3. Today's bar is
    /// stored but its day is not marked fetched (it is not final yet).
    pub(crate) async fn fill_missing(
        &self,
        store: &StoreProvider,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<FillReport> {
        let today = Utc::now().date_naive();
        let mut report = FillReport::default();
        let to = to.min(today);
        if from > to {
            return Ok(report);
        }
        let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        for (first, last) in store.missing_ranges(symbol, from, to).await? {
            match self.fetch_range(symbol, first, last).await {
                Ok((bars, provider)) => {
                    let fetched = bars.len() as u64;
                    let in_range: Vec<Bar> = bars
                        .into_iter()
                        .filter(|b| b.date >= first && b.date <= last)
                        .collect();
                    let (good, rejected) = validate_bars(in_range, today);
                    self.count_rejected(&provider, &rejected);
                    let counts = store.upsert_bars(symbol, &good, &provider).await?;
                    let covered_to = last.min(yesterday);
                    if first <= covered_to {
                        store
                            .record_fetched(symbol, first, covered_to, &provider)
                            .await?;
                    }
                    report.fetched += fetched;
                    report.counts.add(counts);
                    report.rejected.add(&rejected);
                    report.ranges_fetched += 1;
                    report.provider = Some(provider);
                }
                Err(e) => {
                    tracing::warn!(symbol, %first, %last, error = %e, "could not fetch missing bars");
                    if report.error.is_none() {
                        report.error = Some(e);
                    }
                }
            }
        }
        Ok(report)
    }

    async fn bars_through_store(
        &self,
        store: &StoreProvider,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
        staleness: Staleness,
    ) -> Result<Served<Vec<Bar>>> {
        let report = self.fill_missing(store, symbol, from, to).await?;
        let stored = store.bars(symbol, from, to).await?;
        let now = Utc::now();
        let newest_fetch = stored.iter().map(|b| b.fetched_at).max();
        let age = newest_fetch
            .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO);
        if let Some(error) = report.error {
            let serve_stale = !matches!(
                error,
                MarketError::UnknownSymbol { .. } | MarketError::InvalidInput(_)
            ) && !stored.is_empty()
                && staleness.accepts(age);
            if !serve_stale {
                return Err(error);
            }
            self.metrics.served.with_label_values(&["l3", "true"]).inc();
            let origin = stored.last().map(|b| b.source.clone());
            return Ok(Served {
                value: stored.into_iter().map(|b| b.bar).collect(),
                source: Source::L3,
                origin,
                age,
                stale: true,
            });
        }
        let (source, origin, age) = match report.provider {
            Some(provider) => (
                Source::Provider(provider.clone()),
                Some(provider),
                Duration::ZERO,
            ),
            None => (Source::L3, stored.last().map(|b| b.source.clone()), age),
        };
        let layer = if source == Source::L3 {
            "l3"
        } else {
            "provider"
        };
        self.metrics
            .served
            .with_label_values(&[layer, "false"])
            .inc();
        if source == Source::L3 {
            self.metrics.cache_result("l3", "hit");
        }
        Ok(Served {
            value: stored.into_iter().map(|b| b.bar).collect(),
            source,
            origin,
            age,
            stale: false,
        })
    }
}

/// One error for a request every provider failed: the common answer when all
/// providers agree (unknown symbol, unsupported), else the list.
fn summarize(failures: Vec<ProviderFailure>) -> MarketError {
    let all = |pred: fn(&MarketError) -> bool| {
        !failures.is_empty() && failures.iter().all(|f| pred(&f.error))
    };
    if all(|e| {
        matches!(e, MarketError::UnknownSymbol { .. })
            || matches!(e, MarketError::Unsupported { .. })
    }) {
        // Prefer "unknown symbol" over "unsupported" when both appear.
        if let Some(f) = failures
            .iter()
            .find(|f| matches!(*f.error, MarketError::UnknownSymbol { .. }))
        {
            return (*f.error).clone();
        }
        if let Some(f) = failures.first() {
            return (*f.error).clone();
        }
    }
    MarketError::AllProvidersFailed { failures }
}
