//! Rate limiter, retry policy, timeout and coalescer on their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use rampart_market::resilience::Idempotency;
use rampart_market::{
    CallTimeout, Coalescer, MarketError, RateLimitConfig, RateLimiter, RetryPolicy,
};
use tokio::time::Instant;

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_millis(2)
}

fn upstream() -> MarketError {
    MarketError::Upstream {
        provider: "p".into(),
        status: 503,
        detail: "busy".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn token_bucket_bursts_then_paces() {
    let limiter = RateLimiter::new(
        "p",
        RateLimitConfig {
            capacity: 2,
            per_second: 10.0,
            max_wait: Duration::from_millis(50),
        },
    );
    assert_eq!(limiter.reserve(), Ok(Duration::ZERO));
    assert_eq!(limiter.reserve(), Ok(Duration::ZERO));
    // Next token in 100 ms > max wait 50 ms: refused, nothing reserved.
    assert!(close(
        limiter.reserve().unwrap_err(),
        Duration::from_millis(100)
    ));
    assert!(matches!(
        limiter.acquire().await,
        Err(MarketError::Throttled { .. })
    ));
    tokio::time::advance(Duration::from_millis(60)).await;
    // 0.6 tokens: the wait (40 ms) fits.
    let start = Instant::now();
    limiter.acquire().await.unwrap();
    assert!(
        close(start.elapsed(), Duration::from_millis(40)),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn token_bucket_keeps_the_quota_over_time() {
    // 5 calls a second, waiting as long as needed.
    let limiter = RateLimiter::new(
        "p",
        RateLimitConfig {
            capacity: 1,
            per_second: 5.0,
            max_wait: Duration::from_secs(60),
        },
    );
    let start = Instant::now();
    for _ in 0..11 {
        limiter.acquire().await.unwrap();
    }
    // 1 immediate + 10 paced at 200 ms.
    assert!(
        close(start.elapsed(), Duration::from_secs(2)),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_backs_off_and_gives_up() {
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        multiplier: 2.0,
        max_backoff: Duration::from_secs(1),
        jitter: 0.0,
        max_retry_after: Duration::from_secs(5),
    };
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), _> = policy
        .run(Idempotency::Idempotent, |_| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err(upstream()) }
        })
        .await;
    assert!(result.is_err());
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert!(
        close(start.elapsed(), Duration::from_millis(300)),
        "100 ms then 200 ms: {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_honours_retry_after() {
    let policy = RetryPolicy {
        max_attempts: 2,
        jitter: 0.0,
        max_retry_after: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let start = Instant::now();
    let attempts = AtomicU32::new(0);
    let result = policy
        .run(Idempotency::Idempotent, |n| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 1 {
                    Err(MarketError::RateLimited {
                        provider: "p".into(),
                        retry_after: Some(Duration::from_secs(3)),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
    assert_eq!(result.unwrap(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // A Retry-After longer than we are willing to wait: no retry (fall back instead).
    let long = MarketError::RateLimited {
        provider: "p".into(),
        retry_after: Some(Duration::from_secs(60)),
    };
    assert_eq!(policy.delay_after(1, &long, Idempotency::Idempotent), None);
}

#[tokio::test(start_paused = true)]
async fn retry_only_retryable_and_idempotent() {
    let policy = RetryPolicy {
        max_attempts: 5,
        ..RetryPolicy::default()
    };
    let unknown = MarketError::UnknownSymbol {
        provider: "p".into(),
        symbol: "X".into(),
    };
    assert_eq!(
        policy.delay_after(1, &unknown, Idempotency::Idempotent),
        None
    );
    assert_eq!(
        policy.delay_after(1, &upstream(), Idempotency::NotIdempotent),
        None
    );
    let open = MarketError::CircuitOpen {
        provider: "p".into(),
        retry_in: Duration::from_secs(1),
    };
    assert_eq!(
        policy.delay_after(1, &open, Idempotency::Idempotent),
        None,
        "an open breaker means: next provider"
    );
    assert!(
        policy
            .delay_after(1, &upstream(), Idempotency::Idempotent)
            .is_some()
    );
    assert_eq!(
        policy.delay_after(5, &upstream(), Idempotency::Idempotent),
        None,
        "attempts exhausted"
    );
}

#[test]
fn backoff_is_exponential_capped_and_jittered() {
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        multiplier: 2.0,
        max_backoff: Duration::from_millis(500),
        jitter: 0.5,
        max_retry_after: Duration::ZERO,
    };
    for _ in 0..200 {
        let b1 = policy.backoff(1);
        assert!(
            b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100),
            "{b1:?}"
        );
        let b3 = policy.backoff(3);
        assert!(
            b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400),
            "{b3:?}"
        );
        let b9 = policy.backoff(9);
        assert!(
            b9 >= Duration::from_millis(250) && b9 <= Duration::from_millis(500),
            "{b9:?}"
        );
    }
    let spread: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(2)).collect();
    assert!(spread.len() > 10, "jitter spreads retries");
}

#[test]
fn error_verdicts() {
    assert!(upstream().retryable());
    assert!(
        MarketError::Timeout {
            provider: "p".into(),
            after: Duration::from_secs(1)
        }
        .retryable()
    );
    assert!(
        !MarketError::Unauthorized {
            provider: "p".into(),
            detail: String::new()
        }
        .retryable()
    );
    assert!(
        !MarketError::UnknownSymbol {
            provider: "p".into(),
            symbol: "X".into()
        }
        .retryable()
    );
    assert!(!MarketError::InvalidInput("x".into()).falls_back());
    assert!(
        MarketError::UnknownSymbol {
            provider: "p".into(),
            symbol: "X".into()
        }
        .falls_back()
    );
    assert_eq!(
        MarketError::RateLimited {
            provider: "p".into(),
            retry_after: Some(Duration::from_secs(2))
        }
        .retry_after(),
        Some(Duration::from_secs(2))
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_maps_to_typed_error() {
    let t = CallTimeout::new("slowpoke", Duration::from_millis(100));
    let r: Result<(), _> = t
        .run(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    assert_eq!(
        r.unwrap_err(),
        MarketError::Timeout {
            provider: "slowpoke".into(),
            after: Duration::from_millis(100)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coalescer_runs_once_for_concurrent_callers() {
    let coalescer = Arc::new(Coalescer::<String, u64>::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let c = Arc::clone(&coalescer);
        let runs = Arc::clone(&runs);
        tasks.push(tokio::spawn(async move {
            c.run("AAPL".to_owned(), move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                42
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().0, 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(coalescer.joined(), 999);
    // Finished flights are forgotten: the next call runs again.
    let runs2 = Arc::clone(&runs);
    let (v, joined) = coalescer
        .run("AAPL".to_owned(), move || async move {
            runs2.fetch_add(1, Ordering::SeqCst) as u64
        })
        .await;
    assert_eq!((v, joined), (1, false));
}

#[tokio::test]
async fn coalescer_survives_a_cancelled_first_caller_and_forgets_abandoned_flights() {
    let coalescer = Arc::new(Coalescer::<String, u64>::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let flight = |runs: Arc<AtomicUsize>| {
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            7
        }
    };
    // The first caller starts the flight and is cancelled; the second, who
    // joined it, still gets the output from the same single run.
    let first = {
        let c = Arc::clone(&coalescer);
        let f = flight(Arc::clone(&runs));
        tokio::spawn(async move { c.run("MSFT".to_owned(), f).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = {
        let c = Arc::clone(&coalescer);
        let f = flight(Arc::clone(&runs));
        tokio::spawn(async move { c.run("MSFT".to_owned(), f).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(second.await.unwrap(), (7, true));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A flight whose every caller left is dropped, not resumed half-done.
    let c = Arc::clone(&coalescer);
    let abandoned = tokio::time::timeout(
        Duration::from_millis(20),
        c.run("MSFT".to_owned(), flight(Arc::clone(&runs))),
    )
    .await;
    assert!(abandoned.is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let (v, joined) = coalescer
        .run("MSFT".to_owned(), flight(Arc::clone(&runs)))
        .await;
    assert_eq!((v, joined), (7, false));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}
