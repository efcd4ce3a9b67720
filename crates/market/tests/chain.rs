//! The fallback chain against local vendor servers with injected faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart_market::breaker::BreakerState;
use rampart_market::{MarketError, ProviderChain, ProviderPolicy, Source, Staleness, WaitInOpen};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{
    ScriptedProvider, Step, YAHOO_CHART, YAHOO_NOT_FOUND, fast_policy, init, px, yahoo,
};

fn chart() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(YAHOO_CHART.as_bytes().to_vec(), "application/json")
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Answers every AAPL chart request on `server` with `response`.
async fn serve_aapl(server: &MockServer, response: impl Respond + 'static) {
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Answers the first `times` AAPL chart requests on `server` with `response`.
async fn serve_aapl_times(server: &MockServer, response: impl Respond + 'static, times: u64) {
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(response)
        .up_to_n_times(times)
        .mount(server)
        .await;
}

/// A primary and a backup Yahoo-shaped server.
async fn two_servers() -> (MockServer, MockServer) {
    init();
    let primary = MockServer::start().await;
    let backup = MockServer::start().await;
    serve_aapl(&backup, chart()).await;
    (primary, backup)
}

fn chain(primary: &MockServer, backup: &MockServer, policy: ProviderPolicy) -> ProviderChain {
    ProviderChain::builder()
        .provider(yahoo("primary", &primary.uri()), policy.clone())
        .provider(yahoo("backup", &backup.uri()), policy)
        .build()
        .unwrap()
}

/// Asks for a quote with L1 out of the way.
async fn ask(
    chain: &ProviderChain,
) -> Result<rampart_market::Served<rampart_market::Quote>, MarketError> {
    chain.evict_l1("AAPL");
    chain.quote_with("AAPL", Staleness::Forbid).await
}

#[tokio::test]
async fn falls_back_on_500_and_opens_the_breaker() {
    let (primary, backup) = two_servers().await;
    serve_aapl(
        &primary,
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    )
    .await;
    // A long open wait: on a loaded machine the ten calls below must not
    // outlive it and let half-open trial calls through.
    let mut policy = fast_policy();
    policy.breaker.wait_in_open = WaitInOpen::Fixed {
        wait: Duration::from_secs(60),
    };
    let chain = chain(&primary, &backup, policy);
    let mut events = chain.breaker("primary").unwrap().subscribe();
    for i in 0..4 {
        let served = ask(&chain).await.unwrap();
        assert_eq!(served.source, Source::Provider("backup".into()), "call {i}");
        assert_eq!(served.value.price, px(181.18));
    }
    assert_eq!(
        chain.breaker("primary").unwrap().state(),
        BreakerState::Open
    );
    assert_eq!(events.try_recv().unwrap().to, BreakerState::Open);
    assert_eq!(requests(&primary).await, 4);
    // Open: no call reaches the primary.
    for _ in 0..10 {
        assert_eq!(
            ask(&chain).await.unwrap().source,
            Source::Provider("backup".into())
        );
    }
    assert_eq!(
        requests(&primary).await,
        4,
        "no call made to an open provider"
    );
    let metrics = chain.metrics().render();
    assert!(
        metrics.contains(r#"market_breaker_state{provider="primary"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"market_provider_calls_total{operation="quote",outcome="not_permitted",provider="primary"} 10"#), "{metrics}");
    assert!(metrics.contains(r#"market_provider_calls_total{operation="quote",outcome="upstream",provider="primary"} 4"#), "{metrics}");
}

#[tokio::test]
async fn half_open_after_wait_then_closed_when_the_vendor_recovers() {
    let (primary, backup) = two_servers().await;
    serve_aapl_times(&primary, ResponseTemplate::new(502), 4).await;
    serve_aapl(&primary, chart()).await;
    let chain = chain(&primary, &backup, fast_policy());
    let breaker = chain.breaker("primary").unwrap().clone();
    let mut events = breaker.subscribe();
    for _ in 0..4 {
        ask(&chain).await.unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Two trial calls succeed: closed.
    assert_eq!(
        ask(&chain).await.unwrap().source,
        Source::Provider("primary".into())
    );
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(
        ask(&chain).await.unwrap().source,
        Source::Provider("primary".into())
    );
    assert_eq!(breaker.state(), BreakerState::Closed);
    let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|t| (t.from, t.to))
        .collect();
    use BreakerState::*;
    assert_eq!(
        seen,
        vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
}

#[tokio::test]
async fn half_open_trials_failing_reopen() {
    let (primary, backup) = two_servers().await;
    serve_aapl(&primary, ResponseTemplate::new(503)).await;
    let chain = chain(&primary, &backup, fast_policy());
    let breaker = chain.breaker("primary").unwrap().clone();
    for _ in 0..4 {
        ask(&chain).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    ask(&chain).await.unwrap();
    ask(&chain).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Open, "2 failed trials");
    assert_eq!(requests(&primary).await, 6);
}

#[tokio::test]
async fn timeouts_fall_back() {
    let (primary, backup) = two_servers().await;
    serve_aapl(&primary, chart().set_delay(Duration::from_secs(3))).await;
    let chain = chain(&primary, &backup, fast_policy());
    let started = std::time::Instant::now();
    let served = ask(&chain).await.unwrap();
    assert_eq!(served.source, Source::Provider("backup".into()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timeout at 500 ms, not the vendor's 3 s"
    );
    assert_eq!(
        chain.breaker("primary").unwrap().snapshot().failures,
        1,
        "a timeout is a failure"
    );
}

#[tokio::test]
async fn rate_limit_429_holds_the_provider_for_retry_after() {
    let (primary, backup) = two_servers().await;
    serve_aapl(
        &primary,
        ResponseTemplate::new(429).insert_header("Retry-After", "30"),
    )
    .await;
    let chain = chain(&primary, &backup, fast_policy());
    for _ in 0..5 {
        assert_eq!(
            ask(&chain).await.unwrap().source,
            Source::Provider("backup".into())
        );
    }
    assert_eq!(requests(&primary).await, 1, "held for the 30 s Retry-After");
    let breaker = chain.breaker("primary").unwrap();
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "a rate limit is not a failure"
    );
    assert_eq!(breaker.snapshot().failures, 0);
}

#[tokio::test]
async fn retries_honour_a_short_retry_after() {
    let (primary, backup) = two_servers().await;
    serve_aapl_times(
        &primary,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        1,
    )
    .await;
    serve_aapl(&primary, chart()).await;
    let mut policy = fast_policy();
    policy.retry = rampart_market::RetryPolicy {
        max_attempts: 2,
        max_retry_after: Duration::from_secs(2),
        ..Default::default()
    };
    let chain = chain(&primary, &backup, policy);
    let started = std::time::Instant::now();
    let served = ask(&chain).await.unwrap();
    assert_eq!(
        served.source,
        Source::Provider("primary".into()),
        "retried after 1 s on the same provider"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(requests(&backup).await, 0);
}

#[tokio::test]
async fn malformed_truncated_and_html_bodies_fall_back() {
    let (primary, backup) = two_servers().await;
    let truncated = &YAHOO_CHART[..YAHOO_CHART.len() / 2];
    serve_aapl_times(
        &primary,
        ResponseTemplate::new(200).set_body_string(truncated),
        1,
    )
    .await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<html><body>maintenance</body></html>"),
        )
        .up_to_n_times(1)
        .mount(&primary)
        .await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"chart":{"result":[{"meta":{"regularMarketPrice":"NaN"}}]}}"#),
        )
        .mount(&primary)
        .await;
    let chain = chain(&primary, &backup, fast_policy());
    for _ in 0..3 {
        assert_eq!(
            ask(&chain).await.unwrap().source,
            Source::Provider("backup".into())
        );
    }
    assert_eq!(chain.breaker("primary").unwrap().snapshot().failures, 3);
}

#[tokio::test]
async fn invalid_quotes_are_rejected_as_malformed() {
    init();
    let bad = ScriptedProvider::new("bad", vec![Step::Ok(-5.0)]);
    let good = ScriptedProvider::new("good", vec![Step::Ok(10.0)]);
    let chain = ProviderChain::builder()
        .provider(bad.clone(), fast_policy())
        .provider(good, fast_policy())
        .build()
        .unwrap();
    let served = chain.quote("X").await.unwrap();
    assert_eq!(
        (served.source, served.value.price),
        (Source::Provider("good".into()), px(10.0))
    );
    assert_eq!(chain.breaker("bad").unwrap().snapshot().failures, 1);
    assert_eq!(bad.calls(), 1);
}

#[tokio::test]
async fn slow_responses_open_the_breaker() {
    let (primary, backup) = two_servers().await;
    serve_aapl(&primary, chart().set_delay(Duration::from_millis(150))).await;
    let mut policy = fast_policy();
    policy.breaker.slow_call_duration = Duration::from_millis(100);
    policy.breaker.slow_call_rate_threshold = 75.0;
    let chain = chain(&primary, &backup, policy);
    for _ in 0..4 {
        assert_eq!(
            ask(&chain).await.unwrap().source,
            Source::Provider("primary".into()),
            "slow but successful"
        );
    }
    assert_eq!(
        chain.breaker("primary").unwrap().state(),
        BreakerState::Open
    );
    assert_eq!(
        ask(&chain).await.unwrap().source,
        Source::Provider("backup".into())
    );
}

/// Alternates 500 and 200.
struct Flapping(AtomicUsize);

impl Respond for Flapping {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            ResponseTemplate::new(500)
        } else {
            chart()
        }
    }
}

#[tokio::test]
async fn flapping_vendor_trips_at_the_threshold() {
    let (primary, backup) = two_servers().await;
    serve_aapl(&primary, Flapping(AtomicUsize::new(0))).await;
    let chain = chain(&primary, &backup, fast_policy());
    let sources: Vec<Source> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(ask(&chain).await.unwrap().source);
        }
        v
    };
    let p = Source::Provider("primary".into());
    let b = Source::Provider("backup".into());
    // 500, 200, 500, 200 → 50 % of 4 → open; then only the backup.
    assert_eq!(
        sources,
        vec![b.clone(), p.clone(), b.clone(), p, b.clone(), b]
    );
    assert_eq!(
        chain.breaker("primary").unwrap().state(),
        BreakerState::Open
    );
}

#[tokio::test]
async fn unknown_symbol_is_not_a_failure() {
    let (primary, backup) = two_servers().await;
    let not_found = ResponseTemplate::new(404)
        .set_body_raw(YAHOO_NOT_FOUND.as_bytes().to_vec(), "application/json");
    Mock::given(path("/v8/finance/chart/NOPE"))
        .respond_with(not_found.clone())
        .mount(&primary)
        .await;
    Mock::given(path("/v8/finance/chart/NOPE"))
        .respond_with(not_found)
        .mount(&backup)
        .await;
    let chain = chain(&primary, &backup, fast_policy());
    for _ in 0..6 {
        let e = chain.quote("NOPE").await.unwrap_err();
        assert!(matches!(e, MarketError::UnknownSymbol { .. }), "{e}");
    }
    let breaker = chain.breaker("primary").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().failures, 0);
}

#[tokio::test]
async fn all_failing_is_one_typed_error() {
    let (primary, backup) = two_servers().await;
    Mock::given(path("/v8/finance/chart/MSFT"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&primary)
        .await;
    Mock::given(path("/v8/finance/chart/MSFT"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&backup)
        .await;
    let chain = chain(&primary, &backup, fast_policy());
    match chain
        .quote_with("MSFT", Staleness::Forbid)
        .await
        .unwrap_err()
    {
        MarketError::AllProvidersFailed { failures } => {
            assert_eq!(
                failures
                    .iter()
                    .map(|f| f.provider.as_str())
                    .collect::<Vec<_>>(),
                ["primary", "backup"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        chain.quote("").await.unwrap_err(),
        MarketError::InvalidInput(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_requests_make_one_upstream_call() {
    init();
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .respond_with(chart().set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&server)
        .await;
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .build()
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let chain = chain.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            chain.quote("aapl").await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().value.price, px(181.18));
    }
    assert_eq!(requests(&server).await, 1);
    assert_eq!(chain.coalesced_requests(), 999);
    server.verify().await;
    // `MockServer`'s Drop verifies again inside `futures::executor::block_on`.
    // After a thousand joins this task's tokio coop budget may be spent, and
    // then the nested block_on spins forever on wiremock's tokio RwLock (seen
    // in CI: 100% CPU in `poll_proceed`). Dropped with the budget lifted.
    tokio::task::unconstrained(async move { drop(server) }).await;
}

#[tokio::test]
async fn hedging_asks_the_next_provider_when_slow() {
    let (primary, backup) = two_servers().await;
    serve_aapl(&primary, chart().set_delay(Duration::from_millis(400))).await;
    let chain = ProviderChain::builder()
        .provider(yahoo("primary", &primary.uri()), fast_policy())
        .provider(yahoo("backup", &backup.uri()), fast_policy())
        .hedge_after(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let served = ask(&chain).await.unwrap();
    assert_eq!(served.source, Source::Provider("backup".into()));
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests(&primary).await, 1);
    // The abandoned primary call is not a failure.
    assert_eq!(chain.breaker("primary").unwrap().snapshot().failures, 0);
}

#[tokio::test]
async fn search_fundamentals_news_fall_back_past_unsupported() {
    init();
    let server = MockServer::start().await;
    Mock::given(path("/v1/finance/search"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(include_str!("fixtures/yahoo_search.json")),
        )
        .mount(&server)
        .await;
    let embedded = || -> Arc<dyn rampart_market::MarketDataProvider> {
        Arc::new(rampart_market::EmbeddedProvider::new())
    };
    // Yahoo has no fundamentals: the chain asks the embedded set next, which
    // knows names, not ratios. Yahoo answers news and search itself.
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .provider(embedded(), ProviderPolicy::default())
        .build()
        .unwrap();
    let f = chain.fundamentals("AAPL").await.unwrap();
    assert_eq!(f.source, Source::Provider("embedded".into()));
    assert_eq!(
        (f.value.name.as_str(), f.value.pe_ratio),
        ("Apple Inc.", None)
    );
    let news = chain.news("AAPL", 3).await.unwrap();
    assert_eq!(news.source, Source::Provider("yahoo".into()));
    assert!(!news.value.is_empty());
    let search = chain.search("apple").await.unwrap();
    assert_eq!(search.source, Source::Provider("yahoo".into()));
    // No provider with fundamentals at all.
    let chain = ProviderChain::builder()
        .provider(yahoo("yahoo", &server.uri()), fast_policy())
        .build()
        .unwrap();
    let e = chain.fundamentals("AAPL").await.unwrap_err();
    assert!(matches!(e, MarketError::Unsupported { .. }), "{e}");
    // The embedded set has no articles: none for a symbol it knows.
    let chain = ProviderChain::builder()
        .provider(embedded(), ProviderPolicy::default())
        .build()
        .unwrap();
    let news = chain.news("AAPL", 3).await.unwrap();
    assert_eq!(news.source, Source::Provider("embedded".into()));
    assert!(news.value.is_empty());
    let e = chain.news("ZZZZ", 3).await.unwrap_err();
    assert!(matches!(e, MarketError::UnknownSymbol { .. }), "{e}");
}
