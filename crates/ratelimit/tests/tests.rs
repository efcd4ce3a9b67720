//! `RateLimiter` against real Redis servers from `rampart-testkit`, and the
//! GCRA math.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use rampart_ratelimit::{
    Decision, Quota, RateLimitBackend, RateLimitConfig, RateLimiter, gcra_step,
};

/// A key of the test's own so tests sharing one Redis do not meet.
fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn config(redis_url: Option<String>) -> RateLimitConfig {
    RateLimitConfig {
        redis_url,
        key_prefix: "rampart-test:rl".to_owned(),
        redis_timeout_ms: 200,
        reprobe_after_ms: 200,
        ..RateLimitConfig::default()
    }
}

/// 10 per 1000 s with burst 3: one request costs 100 s, so the few
/// milliseconds a test takes never replenish anything.
const SLOW: Quota = Quota::new(10, Duration::from_secs(1000), 3);

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn close(actual: Duration, expected: Duration) -> bool {
    actual <= expected && expected - actual < Duration::from_secs(2)
}

async fn assert_slow_sequence(limiter: &RateLimiter, key: &str) {
    for expected_remaining in [2, 1, 0] {
        let d = limiter.check(key, SLOW).await;
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.limit, 3);
        assert_eq!(d.remaining, expected_remaining, "{d:?}");
        assert_eq!(d.retry_after, None);
        let used = u64::from(3 - expected_remaining);
        assert!(
            close(d.reset_after, Duration::from_secs(100 * used)),
            "{d:?}"
        );
    }
    let denied = limiter.check(key, SLOW).await;
    assert!(!denied.allowed, "{denied:?}");
    assert_eq!(denied.remaining, 0);
    assert!(
        close(denied.retry_after.unwrap(), Duration::from_secs(100)),
        "{denied:?}"
    );
    assert!(
        close(denied.reset_after, Duration::from_secs(300)),
        "{denied:?}"
    );
    let headers = denied.headers();
    assert_eq!(header(&headers, "RateLimit-Limit"), Some("3"));
    assert_eq!(header(&headers, "RateLimit-Remaining"), Some("0"));
    assert_eq!(header(&headers, "RateLimit-Reset"), Some("300"));
    assert_eq!(header(&headers, "Retry-After"), Some("100"));
    // A denied request costs nothing: still denied with the same wait.
    let again = limiter.check(key, SLOW).await;
    assert!(!again.allowed && close(again.retry_after.unwrap(), Duration::from_secs(100)));
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_gcra_sequence_and_headers() {
    let redis = rampart_testkit::redis().unwrap();
    let limiter = RateLimiter::new(config(Some(redis.url()))).unwrap();
    let key = unique("sequence");
    assert_slow_sequence(&limiter, &key).await;
    assert_eq!(limiter.backend(), RateLimitBackend::Redis);

    // The first allowed answer's headers.
    let fresh = limiter.check(&unique("fresh"), SLOW).await;
    let headers = fresh.headers();
    assert_eq!(header(&headers, "RateLimit-Remaining"), Some("2"));
    assert_eq!(header(&headers, "RateLimit-Reset"), Some("100"));
    assert_eq!(header(&headers, "Retry-After"), None);

    // The key lives in Redis with a TTL, and only until replenished.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("rampart-test:rl:{key}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 290_000 && ttl <= 300_001, "ttl {ttl}");

    // Replenishment at a fast rate: 10 per second, burst 2.
    let fast = Quota::new(10, Duration::from_secs(1), 2);
    let key = unique("replenish");
    assert!(limiter.check(&key, fast).await.allowed);
    assert!(limiter.check(&key, fast).await.allowed);
    let denied = limiter.check(&key, fast).await;
    assert!(!denied.allowed);
    tokio::time::sleep(denied.retry_after.unwrap() + Duration::from_millis(20)).await;
    assert!(limiter.check(&key, fast).await.allowed);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_limit() {
    let redis = rampart_testkit::redis().unwrap();
    let a = RateLimiter::new(config(Some(redis.url()))).unwrap();
    let b = RateLimiter::new(config(Some(redis.url()))).unwrap();
    let key = unique("shared");
    assert_eq!(a.check(&key, SLOW).await.remaining, 2);
    assert_eq!(b.check(&key, SLOW).await.remaining, 1);
    assert_eq!(a.check(&key, SLOW).await.remaining, 0);
    assert!(!b.check(&key, SLOW).await.allowed);
    assert!(!a.check(&key, SLOW).await.allowed);

    // The scoped helpers share too (per tenant, per API key, per IP).
    let mut cfg = config(Some(redis.url()));
    cfg.per_tenant = Quota::new(1, Duration::from_secs(600), 1);
    cfg.per_api_key = Quota::new(1, Duration::from_secs(600), 1);
    cfg.per_ip = Quota::new(1, Duration::from_secs(600), 1);
    cfg.key_prefix = unique("scoped");
    let a = RateLimiter::new(cfg.clone()).unwrap();
    let b = RateLimiter::new(cfg).unwrap();
    assert!(a.check_tenant("acme").await.allowed);
    assert!(!b.check_tenant("acme").await.allowed);
    assert!(b.check_tenant("globex").await.allowed);
    assert!(a.check_api_key("rk_live_secret").await.allowed);
    assert!(!b.check_api_key("rk_live_secret").await.allowed);
    let ip: IpAddr = "2001:db8:1:2::10".parse().unwrap();
    let same_64: IpAddr = "2001:db8:1:2::99".parse().unwrap();
    assert!(a.check_ip(ip).await.allowed);
    assert!(
        !b.check_ip(same_64).await.allowed,
        "IPv6 is limited per /64"
    );
    assert!(b.check_ip("192.0.2.7".parse().unwrap()).await.allowed);
    // check_request: the strictest scope wins.
    let d = a
        .check_request(Some("192.0.2.8".parse().unwrap()), Some("acme"), None)
        .await;
    assert!(!d.allowed);

    // The raw API key never reaches Redis.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        keys.iter().all(|k| !k.contains("rk_live_secret")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_falls_back_to_memory_and_recovers() {
    let redis = rampart_testkit::RedisServer::start().unwrap();
    let a = RateLimiter::new(config(Some(redis.url()))).unwrap();
    let b = RateLimiter::new(config(Some(redis.url()))).unwrap();
    let key = unique("outage");
    assert!(a.check(&key, SLOW).await.allowed);
    assert_eq!(
        b.check(&key, SLOW).await.remaining,
        1,
        "shared while Redis is up"
    );

    redis.stop().unwrap();
    // Every request is still answered, quickly, from memory (per replica).
    let started = Instant::now();
    let memory_key = unique("outage-memory");
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(a.check(&memory_key, SLOW).await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        seen.iter().map(|d| d.allowed).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert!(
        matches!(a.backend(), RateLimitBackend::Degraded { .. }),
        "{:?}",
        a.backend()
    );
    // Per replica during the outage: b has its own allowance.
    assert!(b.check(&memory_key, SLOW).await.allowed);
    // Many requests during the outage: no stall while the circuit is open.
    let started = Instant::now();
    for _ in 0..200 {
        let _ = a.check(&unique("flood"), SLOW).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    redis.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for limiter in [&a, &b] {
        while limiter.backend() != RateLimitBackend::Redis {
            assert!(
                Instant::now() < deadline,
                "did not recover: {:?}",
                limiter.backend()
            );
            let _ = limiter.check(&unique("probe"), SLOW).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Shared again.
    let key = unique("after");
    assert_eq!(a.check(&key, SLOW).await.remaining, 2);
    assert_eq!(b.check(&key, SLOW).await.remaining, 1);
    assert_eq!(a.check(&key, SLOW).await.remaining, 0);
    assert!(!b.check(&key, SLOW).await.allowed);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_only_and_disabled() {
    let limiter = RateLimiter::new(config(None)).unwrap();
    assert_eq!(limiter.backend(), RateLimitBackend::Memory);
    assert_slow_sequence(&limiter, "memory").await;

    // Redis configured but never reachable: answers from memory.
    let port = rampart_testkit::free_port().unwrap();
    let limiter = RateLimiter::new(config(Some(format!("redis://127.0.0.1:{port}")))).unwrap();
    assert_slow_sequence(&limiter, "absent").await;
    assert!(matches!(
        limiter.backend(),
        RateLimitBackend::Degraded { .. }
    ));

    let limiter = RateLimiter::new(RateLimitConfig {
        enabled: false,
        ..config(None)
    })
    .unwrap();
    for _ in 0..10 {
        assert!(limiter.check("off", SLOW).await.allowed);
    }
}

/// A request refused by one limit spends nothing from the others (all or
/// nothing, in Redis and in memory): `ip` keeps its budget while `tenant`
/// refuses.
async fn assert_refusal_spends_nothing(limiter: &RateLimiter, name: &str) {
    let ip: IpAddr = "192.0.2.50".parse().unwrap();
    let ip_limit = limiter.ip_limit(ip);
    let tenant = limiter.tenant_limit(&unique(name), false);
    let both = [ip_limit.clone(), tenant.clone()];
    let first = limiter.check_all(&both).await;
    assert_eq!(first.refused_by, None, "{first:?}");
    assert_eq!(
        first.decision.remaining, 0,
        "the tenant's burst of 1 is spent"
    );
    for _ in 0..3 {
        let refused = limiter.check_all(&both).await;
        assert_eq!(refused.refused_by, Some("tenant"), "{refused:?}");
        assert!(refused.decision.retry_after.is_some());
    }
    // The IP's burst of 3 lost one request only, to the allowed one.
    let ip_only = limiter.check_all(&[ip_limit]).await;
    assert_eq!(
        (ip_only.refused_by, ip_only.decision.remaining),
        (None, 1),
        "{ip_only:?}"
    );
    // Authenticated traffic of the tenant has its own budget.
    let authenticated = limiter.tenant_limit(&tenant.key["tenant:".len()..], true);
    assert_eq!(authenticated.scope, "tenant_auth");
    assert!(limiter.check_all(&[authenticated]).await.decision.allowed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_spends_no_other_budget() {
    let quotas = |mut cfg: RateLimitConfig| {
        cfg.per_ip = SLOW;
        cfg.per_tenant = Quota::new(1, Duration::from_secs(600), 1);
        cfg.per_tenant_authenticated = Quota::new(1, Duration::from_secs(600), 1);
        cfg.key_prefix = unique("all-or-nothing");
        cfg
    };
    let memory = RateLimiter::new(quotas(config(None))).unwrap();
    assert_refusal_spends_nothing(&memory, "memory").await;
    let redis = rampart_testkit::redis().unwrap();
    let shared = RateLimiter::new(quotas(config(Some(redis.url())))).unwrap();
    assert_refusal_spends_nothing(&shared, "redis").await;
    assert_eq!(shared.backend(), RateLimitBackend::Redis);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_api_keys_in_memory_keeps_per_ip_and_throttled_keys() {
    // Same quota for IPs and API keys (once, one table held both), and a
    // table of 16 keys per keyspace.
    let quota = Quota::new(5, Duration::from_secs(600), 5);
    let limiter = RateLimiter::new(RateLimitConfig {
        per_ip: quota,
        per_api_key: quota,
        memory_keys_per_shard: 1,
        ..config(None)
    })
    .unwrap();
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    for _ in 0..5 {
        assert!(limiter.check_ip(ip).await.allowed);
    }
    assert!(!limiter.check_ip(ip).await.allowed);
    for _ in 0..5 {
        assert!(limiter.check_api_key("rk_heavy").await.allowed);
    }
    assert!(!limiter.check_api_key("rk_heavy").await.allowed);
    for i in 0..1_000 {
        limiter.check_api_key(&format!("rk_flood_{i}")).await;
    }
    assert!(
        limiter.memory_keys("api_key") <= 16,
        "the keyspace is bounded"
    );
    assert!(
        !limiter.check_ip(ip).await.allowed,
        "a flood of API keys reset the per-IP state"
    );
    assert!(
        !limiter.check_api_key("rk_heavy").await.allowed,
        "a flood of fresh keys evicted a throttled one"
    );
}

#[test]
fn config_and_redaction() {
    let cfg: RateLimitConfig = serde_json::from_value(serde_json::json!({
        "redis_url": "redis://:hunter2@redis.internal:6379/0",
        "per_ip": {"count": 100, "period_secs": 60, "burst": 20}
    }))
    .unwrap();
    assert_eq!(cfg.per_ip, Quota::new(100, Duration::from_secs(60), 20));
    assert_eq!(cfg.per_ip.policy_header(), "100;w=60;burst=20");
    assert_eq!(cfg.per_ip.emission_interval_us(), 600_000);
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("redis.internal"),
        "{debug}"
    );
    let printed = serde_json::to_string(&cfg).unwrap();
    assert!(
        !printed.contains("hunter2") && printed.contains("redis.internal"),
        "{printed}"
    );
    let back: RateLimitConfig = serde_json::from_str(&printed).unwrap();
    assert_eq!(back.per_ip, cfg.per_ip);
    assert!(
        serde_json::from_value::<RateLimitConfig>(
            serde_json::json!({"per_ip": {"count": 0, "period_secs": 60, "burst": 1}})
        )
        .is_err()
    );
    assert!(serde_json::from_value::<RateLimitConfig>(serde_json::json!({"per_ipp": {}})).is_err());
    let err = RateLimiter::new(RateLimitConfig {
        redis_url: Some("nope://x".into()),
        ..RateLimitConfig::default()
    });
    assert!(err.is_err());
}

#[test]
fn gcra_exact_sequence() {
    // 100 per 60 s, burst 20: T = 0.6 s.
    let quota = Quota::new(100, Duration::from_secs(60), 20);
    let t = 600_000;
    let mut tat = None;
    for i in 0..20 {
        let (d, new) = gcra_step(tat, 0, &quota);
        assert!(d.allowed);
        assert_eq!(d.remaining, 19 - i);
        assert_eq!(d.reset_after, Duration::from_micros(t * u64::from(i + 1)));
        tat = new;
    }
    let (d, new) = gcra_step(tat, 0, &quota);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 20,
            remaining: 0,
            reset_after: Duration::from_secs(12),
            retry_after: Some(Duration::from_millis(600))
        }
    );
    assert_eq!(new, None);
    // Just before one interval: still denied; at it: allowed with 0 left.
    assert!(!gcra_step(tat, t - 1, &quota).0.allowed);
    let (d, _) = gcra_step(tat, t, &quota);
    assert!(d.allowed && d.remaining == 0);
    // After 12 s idle, the full burst is back.
    assert_eq!(gcra_step(tat, 12 * 1_000_000, &quota).0.remaining, 19);
    // Headers round up.
    assert_eq!(
        d.headers(),
        vec![
            ("RateLimit-Limit", "20".to_owned()),
            ("RateLimit-Remaining", "0".to_owned()),
            ("RateLimit-Reset", "12".to_owned()),
        ]
    );
}

proptest! {
    /// For any quota and any arrivals: never more than `burst + elapsed / T`
    /// allowed in a window, a denial's `retry_after` is exact, and
    /// `remaining` counts exactly the requests that would still pass now.
    #[test]
    fn gcra_invariants(
        count in 1u32..1_000,
        period_ms in 1u64..100_000,
        burst in 1u32..50,
        gaps in proptest::collection::vec(0u64..200_000, 1..200),
    ) {
        let quota = Quota::new(count, Duration::from_millis(period_ms), burst);
        let t = quota.emission_interval_us();
        let mut tat = None;
        let mut now = 0u64;
        let mut allowed_times = Vec::new();
        for gap in gaps {
            now += gap;
            let (d, new) = gcra_step(tat, now, &quota);
            prop_assert!(d.remaining < burst || !d.allowed);
            if d.allowed {
                allowed_times.push(now);
                tat = new;
                // `remaining` more requests pass at this instant, then one is denied.
                let mut probe = tat;
                for _ in 0..d.remaining {
                    let (p, n) = gcra_step(probe, now, &quota);
                    prop_assert!(p.allowed);
                    probe = n;
                }
                prop_assert!(!gcra_step(probe, now, &quota).0.allowed);
            } else {
                prop_assert_eq!(new, None);
                let wait = u64::try_from(d.retry_after.unwrap().as_micros()).unwrap();
                prop_assert!(wait > 0);
                prop_assert!(gcra_step(tat, now + wait, &quota).0.allowed);
                prop_assert!(!gcra_step(tat, now + wait - 1, &quota).0.allowed);
            }
        }
        // Window bound: in [start, end], at most burst + (end - start) / T.
        for (i, start) in allowed_times.iter().enumerate() {
            for (j, end) in allowed_times.iter().enumerate().skip(i) {
                let n = u64::try_from(j - i + 1).unwrap();
                prop_assert!(n <= u64::from(burst) + (end - start) / t, "{n} in {}µs", end - start);
            }
        }
    }
}
