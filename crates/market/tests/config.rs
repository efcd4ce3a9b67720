//! The typed configuration and building a chain from it.

use std::time::Duration;

use rampart_market::{MarketConfig, ProviderChain, ProviderKind, Source};

use crate::support::{fresh_database, px};

#[test]
fn defaults_and_parsing() {
    let empty: MarketConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, MarketConfig::default());
    assert_eq!(empty.providers[0].kind, ProviderKind::Embedded);
    assert_eq!(
        (empty.cache.l1_quote_ttl, empty.cache.l2_quote_ttl),
        (Duration::from_secs(5), Duration::from_secs(60))
    );
    let full: MarketConfig = serde_json::from_str(
        r#"{
            "providers": [
                {"kind": "alpaca", "api_key": "key-id-123", "api_secret": "topsecretvalue", "feed": "iex", "timeout_ms": 2000},
                {"kind": "alpha_vantage", "api_key": "k", "adjusted": false},
                {"kind": "finnhub", "name": "fh", "rate_limit": {"capacity": 30, "per_second": 1.0, "max_wait_ms": 100}},
                {"kind": "yahoo", "breaker": {"sliding_window": {"type": "time", "size": 60}, "minimum_calls": 5}},
                {"kind": "stooq", "retry": {"max_attempts": 3}},
                {"kind": "embedded"}
            ],
            "breaker": {"failure_rate_threshold": 40, "wait_in_open": {"type": "fixed", "wait_ms": 1000}},
            "hedge_after_ms": 250
        }"#,
    )
    .unwrap();
    assert_eq!(full.providers.len(), 6);
    assert_eq!(full.providers[2].name(), "fh");
    assert_eq!(full.providers[0].timeout, Duration::from_millis(2000));
    assert_eq!(full.hedge_after, Some(Duration::from_millis(250)));
    assert_eq!(full.breaker.failure_rate_threshold, 40.0);
    assert!(
        serde_json::from_str::<MarketConfig>(r#"{"providres": []}"#).is_err(),
        "unknown fields are refused"
    );
    let debug = format!("{full:?}");
    assert!(
        !debug.contains("topsecretvalue") && !debug.contains("key-id-123"),
        "{debug}"
    );
    assert!(
        ProviderKind::AlphaVantage
            .default_rate_limit()
            .unwrap()
            .per_second
            < 0.1,
        "5 calls a minute"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn from_config_builds_everything() {
    let db = fresh_database().await;
    let redis = rampart_testkit::redis().unwrap();
    let mut config = MarketConfig::default();
    config.store.database_url = Some(db.url.clone());
    config.cache.redis_url = Some(redis.url());
    config.cache.redis_prefix = format!("cfg-test-{}", std::process::id());
    let registry = prometheus::Registry::new();
    let chain = ProviderChain::from_config(&config, Some(&registry), None)
        .await
        .unwrap();
    assert!(chain.store().is_some() && chain.redis().is_some());
    let q = chain.quote("IBM").await.unwrap();
    assert_eq!(
        (q.source, q.value.price),
        (Source::Provider("embedded".into()), px(125.55))
    );
    let names: Vec<String> = registry
        .gather()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert!(
        names.contains(&"market_provider_calls_total".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"market_breaker_state".to_owned()));
    // A second chain cannot register the same metrics twice in one registry.
    assert!(
        ProviderChain::from_config(&config, Some(&registry), None)
            .await
            .is_err()
    );
    let bad = MarketConfig {
        providers: vec![rampart_market::ProviderConfig::new(ProviderKind::Store)],
        ..MarketConfig::default()
    };
    assert!(
        ProviderChain::from_config(&bad, None, None).await.is_err(),
        "a store provider needs a store"
    );
}
