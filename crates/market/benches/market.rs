//! Criterion benchmarks of the market chain:
//!
//! * overhead of breaker + limiter + chain on a call served from L1 (goal < 1 µs);
//! * the guarded provider path (breaker permit, token bucket, timeout) on an
//!   in-memory provider, and its pieces;
//! * L2 hit latency on a loopback Redis (started by the testkit);
//! * throughput of 1,000 concurrent requests for one symbol (coalesced).
//!
//! Run: `cargo bench -p rampart-market`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;
use rampart_market::breaker::{CallOutcome, CircuitBreaker};
use rampart_market::{
    Bar, BreakerConfig, CacheConfig, EmbeddedProvider, GuardedProvider, MarketDataProvider,
    MarketError, MarketMetrics, ProviderChain, ProviderPolicy, Quote, RateLimitConfig, RateLimiter,
    RedisCache, RetryPolicy, SymbolMatch,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

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

/// A provider answering after a fixed delay.
struct Slow(Duration);

#[async_trait]
impl MarketDataProvider for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn quote(&self, symbol: &str) -> Result<Quote, MarketError> {
        tokio::time::sleep(self.0).await;
        Ok(Quote {
            symbol: symbol.into(),
            price: 1.0,
            previous_close: None,
            bid: None,
            ask: None,
            volume: None,
            currency: None,
            as_of: Utc::now(),
        })
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
    let rt = runtime();
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
    group.finish();
}

fn guarded(c: &mut Criterion) {
    let rt = runtime();
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
    let rt = runtime();
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
    group.measurement_time(Duration::from_secs(5));
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

fn coalesced(c: &mut Criterion) {
    let rt = runtime();
    let chain = ProviderChain::builder()
        .provider(
            Arc::new(Slow(Duration::from_millis(1))),
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
    group.sample_size(20);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000_concurrent_same_symbol", |b| {
        b.to_async(&rt).iter_batched(
            || chain.evict_l1("X"),
            |()| async {
                let all = futures::future::join_all((0..1000).map(|_| chain.quote("X"))).await;
                assert!(all.iter().all(Result::is_ok));
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = l1_hit, guarded, l2_hit, coalesced
}
criterion_main!(benches);
