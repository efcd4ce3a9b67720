//! Breaker and cache overhead of the market chain (`rampart-market`):
//!
//! - `l1_hit/chain_quote`, `l1_hit/chain_daily_bars`: answers served from L1
//!   (goal < 1 µs for a quote);
//! - `guard/*`: a call through the guarded provider (retry, breaker permit,
//!   token bucket, timeout, metrics) vs the bare in-memory provider, and the
//!   breaker and token bucket alone;
//! - `l2_hit/*`: L2 on a real Redis started by the test kit;
//! - `l3_hit/*`: L3 daily bars on a real PostgreSQL started by the test kit;
//! - `coalesced/*`: N concurrent misses for one symbol (provider answering in
//!   1 ms) coalesced into one upstream call, vs a single miss.
//!
//! Run: `cargo bench -p rampart-benches --bench market`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;
use rampart_market::breaker::{CallOutcome, CircuitBreaker};
use rampart_market::{
    Bar, BreakerConfig, CacheConfig, EmbeddedProvider, GuardedProvider, MarketDataProvider,
    MarketError, MarketMetrics, ProviderChain, ProviderPolicy, Quote, RateLimitConfig, RateLimiter,
    RedisCache, RetryPolicy, StoreProvider, SymbolMatch,
};

fn policy() -> ProviderPolicy {
    ProviderPolicy {
        breaker: BreakerConfig::default(),
        retry: RetryPolicy::default(),
        timeout: Duration::from_secs(5),
        // A limiter that never runs dry, so its bookkeeping is measured, not waits.
        rate_limit: Some(RateLimitConfig {
            capacity: u32::MAX,
            per_second: 1e12,
            max_wait: Duration::from_millis(1),
        }),
    }
}

/// A provider answering after a fixed delay; counts its calls.
struct Slow(Duration, AtomicU64);

#[async_trait]
impl MarketDataProvider for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn quote(&self, symbol: &str) -> Result<Quote, MarketError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.0).await;
        Ok(Quote::at(symbol, rampart_market::Decimal::ONE))
    }
    async fn daily_bars(
        &self,
        _: &str,
        _: NaiveDate,
        _: NaiveDate,
    ) -> Result<Vec<Bar>, MarketError> {
        Ok(Vec::new())
    }
    async fn search(&self, _: &str) -> Result<Vec<SymbolMatch>, MarketError> {
        Ok(Vec::new())
    }
}

fn l1_hit(c: &mut Criterion) {
    let rt = rampart_benches::runtime().unwrap();
    let _guard = rt.enter();
    let chain = ProviderChain::builder()
        .provider(Arc::new(EmbeddedProvider::new()), policy())
        .cache(CacheConfig {
            l1_quote_ttl: Duration::from_secs(3600),
            ..CacheConfig::default()
        })
        .build()
        .unwrap();
    rt.block_on(chain.quote("^GSPC")).unwrap();
    let mut group = c.benchmark_group("l1_hit");
    // An L1 hit completes on its first poll: no executor in the measurement.
    group.bench_function("chain_quote", |b| {
        b.iter(|| {
            chain
                .quote(std::hint::black_box("^GSPC"))
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    let (from, to) = year_2018();
    rt.block_on(chain.daily_bars("^GSPC", from, to)).unwrap();
    group.bench_function("chain_daily_bars_252d", |b| {
        b.iter(|| {
            let served = chain
                .daily_bars(std::hint::black_box("^GSPC"), from, to)
                .now_or_never()
                .unwrap()
                .unwrap();
            assert_eq!(served.source, rampart_market::Source::L1);
        })
    });
    group.finish();
}

fn year_2018() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2018, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2018, 12, 31).unwrap(),
    )
}

fn guarded(c: &mut Criterion) {
    let rt = rampart_benches::runtime().unwrap();
    let _guard = rt.enter();
    let metrics = MarketMetrics::new().unwrap();
    let guarded = GuardedProvider::new(Arc::new(EmbeddedProvider::new()), policy(), metrics);
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    let limiter = RateLimiter::new(
        "bench",
        RateLimitConfig {
            capacity: u32::MAX,
            per_second: 1e12,
            max_wait: Duration::from_millis(1),
        },
    );
    let mut group = c.benchmark_group("guard");
    group.bench_function("breaker_acquire_record", |b| {
        b.iter(|| breaker.try_acquire().unwrap().record(CallOutcome::Success))
    });
    group.bench_function("token_bucket_reserve", |b| {
        b.iter(|| limiter.reserve().unwrap())
    });
    group.bench_function("guarded_call_embedded_quote", |b| {
        b.iter(|| {
            guarded
                .call("quote", |p| p.quote("^GSPC"))
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("embedded_quote_unguarded", |b| {
        let p = EmbeddedProvider::new();
        b.iter(|| p.quote("^GSPC").now_or_never().unwrap().unwrap())
    });
    group.finish();
}

fn l2_hit(c: &mut Criterion) {
    rampart_testkit::install_crypto_provider();
    let redis = rampart_testkit::redis().unwrap();
    let rt = rampart_benches::runtime().unwrap();
    let cache = rt
        .block_on(RedisCache::connect(
            &redis.url(),
            "bench",
            Duration::from_secs(3600),
            Duration::from_secs(3600),
            Duration::from_millis(200),
        ))
        .unwrap();
    let chain = ProviderChain::builder()
        .provider(Arc::new(EmbeddedProvider::new()), policy())
        .redis(cache)
        .build()
        .unwrap();
    rt.block_on(chain.quote("^GSPC")).unwrap();
    let mut group = c.benchmark_group("l2_hit");
    rampart_benches::tune(&mut group, 100, Duration::from_secs(5));
    group.bench_function("redis_get_fresh", |b| {
        b.to_async(&rt).iter(|| async {
            chain
                .redis()
                .unwrap()
                .get_fresh("^GSPC")
                .await
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("chain_quote_l1_evicted", |b| {
        b.to_async(&rt).iter(|| async {
            chain.evict_l1("^GSPC");
            let served = chain.quote("^GSPC").await.unwrap();
            assert_eq!(served.source, rampart_market::Source::L2);
        })
    });
    group.finish();
}

fn l3_hit(c: &mut Criterion) {
    rampart_testkit::install_crypto_provider();
    let pg = rampart_testkit::postgres().unwrap();
    let rt = rampart_benches::runtime().unwrap();
    let db = rt.block_on(pg.fresh_database()).unwrap();
    let store = rt.block_on(StoreProvider::connect(&db.url, 4)).unwrap();
    let chain = ProviderChain::builder()
        .provider(Arc::new(EmbeddedProvider::new()), policy())
        .store(store.clone())
        .build()
        .unwrap();
    let (from, to) = year_2018();
    // The first request fetches the year into L3; later ones find it there.
    let first = rt.block_on(chain.daily_bars("^GSPC", from, to)).unwrap();
    let days = first.value.len();
    assert!(days > 240, "{days} bars");
    let mut group = c.benchmark_group("l3_hit");
    rampart_benches::tune(&mut group, 100, Duration::from_secs(5));
    group.throughput(Throughput::Elements(days as u64));
    group.bench_function("store_bars_1y", |b| {
        b.to_async(&rt).iter(|| async {
            let rows = store.bars("^GSPC", from, to).await.unwrap();
            assert_eq!(rows.len(), days);
        })
    });
    group.bench_function("chain_daily_bars_1y_l1_evicted", |b| {
        b.to_async(&rt).iter(|| async {
            chain.evict_l1("^GSPC");
            let served = chain.daily_bars("^GSPC", from, to).await.unwrap();
            assert_eq!(served.source, rampart_market::Source::L3);
        })
    });
    group.finish();
}

fn coalesced(c: &mut Criterion) {
    let rt = rampart_benches::runtime().unwrap();
    let slow = Arc::new(Slow(Duration::from_millis(1), AtomicU64::new(0)));
    let chain = ProviderChain::builder()
        .provider(
            slow.clone(),
            ProviderPolicy {
                rate_limit: None,
                ..policy()
            },
        )
        .cache(CacheConfig {
            l1_quote_ttl: Duration::from_millis(1),
            ..CacheConfig::default()
        })
        .build()
        .unwrap();
    let mut group = c.benchmark_group("coalesced");
    rampart_benches::tune(&mut group, 20, Duration::from_secs(3));
    for n in [1u64, 1000] {
        group.throughput(Throughput::Elements(n));
        let calls_before = slow.1.load(Ordering::Relaxed);
        let mut batches = 0u64;
        group.bench_function(format!("{n}_concurrent_misses_same_symbol"), |b| {
            b.to_async(&rt).iter_batched(
                || {
                    batches += 1;
                    chain.evict_l1("X")
                },
                |()| async {
                    let all = futures::future::join_all((0..n).map(|_| chain.quote("X"))).await;
                    assert!(all.iter().all(Result::is_ok));
                },
                BatchSize::PerIteration,
            )
        });
        let calls = slow.1.load(Ordering::Relaxed) - calls_before;
        println!(
            "coalesced: {n} concurrent misses x {batches} rounds -> {calls} upstream calls ({:.3} per round)",
            calls as f64 / batches.max(1) as f64
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = rampart_benches::criterion();
    targets = l1_hit, guarded, l2_hit, l3_hit, coalesced
}
criterion_main!(benches);
