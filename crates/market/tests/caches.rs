//! L1 (moka), L2 (real Redis) and L3 (real PostgreSQL), and degradation.

use std::sync::Arc;
use std::time::Duration;

use rampart_market::{
    CacheConfig, MarketError, ProviderChain, RedisCache, Source, Staleness, StoreProvider,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    ScriptedProvider, Step, YAHOO_CHART, date, fast_policy, fresh_database, init, px, yahoo,
};

fn prefix() -> String {
    format!("test:{}:{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

async fn redis_cache(url: &str, prefix: &str, fresh: Duration) -> RedisCache {
    RedisCache::connect(
        url,
        prefix,
        fresh,
        Duration::from_secs(3600),
        Duration::from_millis(200),
    )
    .await
    .unwrap()
}

async fn chart_server() -> MockServer {
    init();
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(YAHOO_CHART.as_bytes().to_vec(), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn l1_then_l2_shared_by_replicas() {
    let server = chart_server().await;
    let redis = rampart_testkit::redis().unwrap();
    let prefix = prefix();
    let replica = |cache: RedisCache| {
        ProviderChain::builder()
            .provider(yahoo("yahoo", &server.uri()), fast_policy())
            .redis(cache)
            .build()
            .unwrap()
    };
    let a = replica(redis_cache(&redis.url(), &prefix, Duration::from_secs(60)).await);
    let b = replica(redis_cache(&redis.url(), &prefix, Duration::from_secs(60)).await);

    let first = a.quote("AAPL").await.unwrap();
    assert_eq!(
        (first.source, first.stale, first.age),
        (Source::Provider("yahoo".into()), false, Duration::ZERO)
    );
    let l1 = a.quote("AAPL").await.unwrap();
    assert_eq!(l1.source, Source::L1);
    assert_eq!(l1.origin.as_deref(), Some("yahoo"));
    assert!(l1.age < Duration::from_secs(5));

    tokio::time::sleep(Duration::from_millis(20)).await;
    let other = b.quote("AAPL").await.unwrap();
    assert_eq!(
        other.source,
        Source::L2,
        "another replica finds it in Redis"
    );
    assert!(
        other.age >= Duration::from_millis(20),
        "age says how old: {:?}",
        other.age
    );
    assert_eq!(
        b.quote("AAPL").await.unwrap().source,
        Source::L1,
        "and keeps it in its L1"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    // Batch: one L2 round trip serves what L1 lacks.
    let c = replica(redis_cache(&redis.url(), &prefix, Duration::from_secs(60)).await);
    let batch = c.quotes(&["AAPL".into()], Staleness::Forbid).await;
    assert_eq!(batch[0].1.as_ref().unwrap().source, Source::L2);
    let metrics = a.metrics().render();
    assert!(
        metrics.contains(r#"market_cache_requests_total{layer="l1",result="hit"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn l1_expires_after_its_ttl() {
    let server = chart_server().await;
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .cache(CacheConfig {
            l1_quote_ttl: Duration::from_millis(100),
            ..CacheConfig::default()
        })
        .build()
        .unwrap();
    chain.quote("AAPL").await.unwrap();
    assert_eq!(chain.quote("AAPL").await.unwrap().source, Source::L1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        chain.quote("AAPL").await.unwrap().source,
        Source::Provider("yahoo".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_degrades_to_l1_and_upstream() {
    let server = chart_server().await;
    let redis = rampart_testkit::RedisServer::start().unwrap();
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .redis(redis_cache(&redis.url(), &prefix(), Duration::from_secs(60)).await)
        .build()
        .unwrap();
    assert!(chain.redis().unwrap().is_connected());
    chain.quote("AAPL").await.unwrap();
    chain.evict_l1("AAPL");
    assert_eq!(chain.quote("AAPL").await.unwrap().source, Source::L2);

    redis.stop().unwrap();
    chain.evict_l1("AAPL");
    let started = std::time::Instant::now();
    let served = chain
        .quote("AAPL")
        .await
        .expect("Redis down is not an error");
    assert_eq!(served.source, Source::Provider("yahoo".into()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the Redis timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(chain.quote("AAPL").await.unwrap().source, Source::L1);
    assert!(
        chain
            .metrics()
            .render()
            .contains(r#"market_cache_requests_total{layer="l2",result="error"}"#)
    );

    // Back up: L2 is used again once reconnected.
    redis.restart().unwrap();
    let mut back = false;
    for _ in 0..50 {
        chain.evict_l1("AAPL");
        if chain.quote("AAPL").await.unwrap().source == Source::L2 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "L2 serves again after Redis restarts");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_unreachable_from_the_start() {
    let server = chart_server().await;
    let port = rampart_testkit::free_port().unwrap();
    let cache = redis_cache(
        &format!("redis://127.0.0.1:{port}"),
        "x",
        Duration::from_secs(60),
    )
    .await;
    assert!(!cache.is_connected());
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .redis(cache)
        .build()
        .unwrap();
    assert_eq!(
        chain.quote("AAPL").await.unwrap().source,
        Source::Provider("yahoo".into())
    );
    assert_eq!(chain.quote("AAPL").await.unwrap().source, Source::L1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_quote_from_l2_when_every_provider_fails() {
    init();
    let redis = rampart_testkit::redis().unwrap();
    let vendor = ScriptedProvider::new(
        "vendor",
        vec![
            Step::Ok(50.0),
            Step::Fail(MarketError::Upstream {
                provider: "vendor".into(),
                status: 500,
                detail: String::new(),
            }),
        ],
    );
    let chain = ProviderChain::builder()
        .provider(vendor.clone(), fast_policy())
        .cache(CacheConfig {
            l1_quote_ttl: Duration::from_millis(50),
            ..CacheConfig::default()
        })
        .redis(redis_cache(&redis.url(), &prefix(), Duration::from_secs(1)).await)
        .build()
        .unwrap();
    assert_eq!(
        chain.quote("IBM").await.unwrap().source,
        Source::Provider("vendor".into())
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let stale = chain.quote("IBM").await.unwrap();
    assert_eq!(
        (stale.source.clone(), stale.stale, stale.value.price),
        (Source::L2, true, px(50.0))
    );
    assert!(stale.age >= Duration::from_secs(1), "{:?}", stale.age);
    assert_eq!(stale.origin.as_deref(), Some("vendor"));
    assert!(
        chain
            .quote_with("IBM", Staleness::AtMost(Duration::from_millis(100)))
            .await
            .is_err(),
        "too old for this caller"
    );
    assert!(matches!(
        chain
            .quote_with("IBM", Staleness::Forbid)
            .await
            .unwrap_err(),
        MarketError::AllProvidersFailed { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_quote_from_l3_without_redis() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 4).await.unwrap();
    let vendor = ScriptedProvider::new(
        "vendor",
        vec![
            Step::Ok(75.5),
            Step::Fail(MarketError::Timeout {
                provider: "vendor".into(),
                after: Duration::from_secs(1),
            }),
        ],
    );
    let chain = ProviderChain::builder()
        .provider(vendor, fast_policy())
        .cache(CacheConfig {
            l1_quote_ttl: Duration::from_millis(20),
            ..CacheConfig::default()
        })
        .store(store.clone())
        .build()
        .unwrap();
    chain.quote("IBM").await.unwrap();
    // The L3 write is off the request path: wait for it.
    for _ in 0..50 {
        if store.latest_quote("IBM").await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stale = chain.quote("IBM").await.unwrap();
    assert_eq!(
        (stale.source, stale.stale, stale.value.price),
        (Source::L3, true, px(75.5))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_bars_fetch_only_what_l3_lacks() {
    let db = fresh_database().await;
    let store = StoreProvider::connect(&db.url, 4).await.unwrap();
    let vendor = ScriptedProvider::new("vendor", vec![]);
    let chain = ProviderChain::builder()
        .provider(vendor.clone(), fast_policy())
        .store(store.clone())
        .build()
        .unwrap();

    let jan = chain
        .daily_bars("^GSPC", date(2018, 1, 1), date(2018, 1, 31))
        .await
        .unwrap();
    assert_eq!(
        (jan.source.clone(), jan.value.len()),
        (Source::Provider("vendor".into()), 21)
    );
    assert_eq!(
        *vendor.bar_requests.lock().unwrap(),
        vec![(date(2018, 1, 1), date(2018, 1, 31))]
    );

    // Same range again: L1, then (L1 cleared) L3 with no provider call.
    assert_eq!(
        chain
            .daily_bars("^GSPC", date(2018, 1, 1), date(2018, 1, 31))
            .await
            .unwrap()
            .source,
        Source::L1
    );
    chain.evict_l1("^GSPC");
    let again = chain
        .daily_bars("^GSPC", date(2018, 1, 1), date(2018, 1, 31))
        .await
        .unwrap();
    assert_eq!(
        (again.source, again.value.len(), again.origin.as_deref()),
        (Source::L3, 21, Some("vendor"))
    );
    assert_eq!(vendor.bar_requests.lock().unwrap().len(), 1);

    // A wider range: only the two missing ends are fetched.
    let wide = chain
        .daily_bars("^GSPC", date(2017, 12, 1), date(2018, 2, 28))
        .await
        .unwrap();
    assert_eq!(wide.value.len(), 20 + 21 + 19);
    assert_eq!(
        vendor.bar_requests.lock().unwrap()[1..],
        [
            (date(2017, 12, 1), date(2017, 12, 31)),
            (date(2018, 2, 1), date(2018, 2, 28))
        ]
    );
    // A day with no trading (New Year) is fetched once, then known to be empty.
    chain
        .daily_bars("^GSPC", date(2019, 1, 1), date(2019, 1, 1))
        .await
        .unwrap();
    chain.evict_l1("^GSPC");
    assert!(
        chain
            .daily_bars("^GSPC", date(2019, 1, 1), date(2019, 1, 1))
            .await
            .unwrap()
            .value
            .is_empty()
    );
    assert_eq!(vendor.bar_requests.lock().unwrap().len(), 4);

    // Every provider failing: what L3 has, marked stale.
    *vendor.bars_fail.lock().unwrap() = Some(MarketError::Upstream {
        provider: "vendor".into(),
        status: 502,
        detail: String::new(),
    });
    let stale = chain
        .daily_bars("^GSPC", date(2017, 11, 1), date(2018, 1, 31))
        .await
        .unwrap();
    assert_eq!(
        (stale.source, stale.stale, stale.value.len()),
        (Source::L3, true, 41)
    );
    assert!(
        chain
            .daily_bars_with(
                "^GSPC",
                date(2017, 10, 1),
                date(2018, 1, 31),
                Staleness::Forbid
            )
            .await
            .is_err()
    );
    let stored: Arc<Vec<_>> = Arc::new(
        store
            .bars("^GSPC", date(2017, 1, 1), date(2019, 1, 1))
            .await
            .unwrap(),
    );
    assert_eq!(stored.len(), 60);
}
